// The split plugin's stage, run in-process on small versions: sizes, which rows go
// where (by a row id stored in x), determinism, stratified shares, and errors.
#include <kiln/data/dataset.h>
#include <kiln/error.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "data/data_test_support.h"
#include "data/fake_context.h"
#include "data/npy_support.h"

namespace kiln::data {
namespace {

namespace fs = std::filesystem;
using testing::FakeContext;
using ::testing::HasSubstr;

const fs::path kPluginFile = fs::path(KILN_BINARY_DIR) / "lib/kiln/plugins/kiln-split.so";

// Class of row i: 60 % class 0, 30 % class 1, 10 % class 2.
std::uint8_t label_of(std::int64_t i) { return i % 10 < 6 ? 0 : (i % 10 < 9 ? 1 : 2); }

struct Part {
  std::vector<std::int32_t> ids;  // x[:, 0], the input row each row came from
  std::vector<std::int32_t> x;
  std::vector<std::uint8_t> y;
  std::vector<float> w;
};

class SplitStage : public ::testing::Test {
 protected:
  void SetUp() override {
    // CMake builds it before this suite (DEPENDS): missing is a build bug.
    ASSERT_TRUE(fs::exists(kPluginFile)) << kPluginFile << " is not built (kiln_plugin_split)";
    types_ = testing::load_plugin_types(kPluginFile);
    ASSERT_EQ(types_.size(), 1u);
  }

  // x i32 [rows, 3] = (i, 7 i, -i), y u8 labels, w f32 [rows] = i / 2: every row
  // is unique and says which input row it is.
  Artifact dataset(std::int64_t rows, DType label_type = DType::U8, bool labels = true) {
    std::vector<std::int32_t> x;
    std::vector<float> w;
    std::vector<std::uint8_t> y;
    std::vector<float> y_float;
    for (std::int64_t i = 0; i < rows; ++i) {
      x.insert(x.end(), {static_cast<std::int32_t>(i), static_cast<std::int32_t>(7 * i),
                         static_cast<std::int32_t>(-i)});
      w.push_back(static_cast<float>(i) / 2);
      y.push_back(label_of(i));
      y_float.push_back(label_of(i));
    }
    std::vector<Array> arrays = {
        testing::make_array("x", DType::I32, {rows, 3}, testing::little_endian(x)),
        testing::make_array("w", DType::F32, {rows}, testing::little_endian(w))};
    if (labels && label_type == DType::U8)
      arrays.push_back(testing::make_array("y", DType::U8, {rows}, y));
    if (labels && label_type == DType::F32)
      arrays.push_back(
          testing::make_array("y", DType::F32, {rows}, testing::little_endian(y_float)));
    const DatasetVersion version = DatasetStore(dir_ / "registry").put("fmnist", arrays, {});
    return {.name = "dataset",
            .kind = "dataset",
            .path = version.file,
            .content_id = version.id,
            .producer = "import"};
  }

  // Runs the stage; returns its two outputs (train, validation).
  std::vector<Artifact> split(const Artifact& input, nlohmann::json values) {
    FakeContext context(dir_.path(), "split", testing::with_defaults(types_[0], std::move(values)),
                        {input});
    types_[0].check(context.params());
    types_[0].run(context);
    return context.emitted;
  }

  std::string error_of(const Artifact& input, nlohmann::json values) {
    try {
      split(input, std::move(values));
    } catch (const Error& error) {
      return std::string(to_string(error.kind())) + ": " + error.what();  // "data error: ..."
    }
    return "no error";
  }

  static Part read_part(const Artifact& artifact) {
    Part part;
    part.x = testing::values_of<std::int32_t>(read_array(artifact.path, "x").bytes);
    part.y = read_array(artifact.path, "y").bytes;
    part.w = testing::values_of<float>(read_array(artifact.path, "w").bytes);
    for (std::size_t i = 0; i < part.x.size(); i += 3) part.ids.push_back(part.x[i]);
    return part;
  }

  testing::ScratchDir dir_;
  std::vector<StageType> types_;
};

TEST_F(SplitStage, LastTakesTheLastRowsAsTheyAre) {
  const Artifact input = dataset(600);
  const auto outputs = split(input, {{"validation", 100}, {"order", "last"}});
  ASSERT_EQ(outputs.size(), 2u);
  EXPECT_EQ(outputs[0].name, "train");
  EXPECT_EQ(outputs[0].kind, "dataset");
  EXPECT_EQ(outputs[1].name, "validation");
  EXPECT_EQ(outputs[1].kind, "validation_data");
  EXPECT_EQ(outputs[0].meta["rows"], 500);
  EXPECT_EQ(outputs[1].meta["rows"], 100);
  EXPECT_EQ(outputs[1].meta["parent"], input.content_id);
  const DatasetVersion validation = read_dataset_info(outputs[1].path);
  EXPECT_EQ(validation.id, outputs[1].content_id);
  ASSERT_EQ(validation.arrays.size(), 3u);
  EXPECT_EQ(validation.arrays[0].name, "w");
  EXPECT_EQ(validation.arrays[0].dtype, DType::F32);
  EXPECT_EQ(validation.arrays[1].shape, (std::vector<std::int64_t>{100, 3}));
  EXPECT_EQ(validation.arrays[1].dtype, DType::I32);
  EXPECT_EQ(validation.arrays[2].dtype, DType::U8);
  // Byte for byte the input's rows 500..599 and 0..499.
  const Array x = read_array(input.path, "x");
  const Array y = read_array(input.path, "y");
  const Array w = read_array(input.path, "w");
  EXPECT_EQ(read_array(outputs[1].path, "x").bytes,
            testing::Bytes(x.bytes.begin() + 500 * 12, x.bytes.end()));
  EXPECT_EQ(read_array(outputs[1].path, "y").bytes,
            testing::Bytes(y.bytes.begin() + 500, y.bytes.end()));
  EXPECT_EQ(read_array(outputs[1].path, "w").bytes,
            testing::Bytes(w.bytes.begin() + 500 * 4, w.bytes.end()));
  EXPECT_EQ(read_array(outputs[0].path, "x").bytes,
            testing::Bytes(x.bytes.begin(), x.bytes.begin() + 500 * 12));
  EXPECT_EQ(read_array(outputs[0].path, "y").bytes,
            testing::Bytes(y.bytes.begin(), y.bytes.begin() + 500));
}

// A CSV import's categorical codes mean the names in its source; both parts keep
// them, so that train can one-hot encode a part.
TEST_F(SplitStage, PartsKeepTheNamesBehindCategoricalCodes) {
  std::vector<float> x;
  std::vector<std::uint8_t> y;
  for (std::int64_t i = 0; i < 50; ++i) {
    x.push_back(static_cast<float>(i % 3));
    y.push_back(label_of(i));
  }
  const nlohmann::json source = {{"format", "csv"},
                                 {"feature_columns", {"city"}},
                                 {"categories", {{"city", {"Athens", "Lima", "Oslo"}}}}};
  const DatasetVersion version =
      DatasetStore(dir_ / "registry")
          .put("cities",
               {testing::make_array("x", DType::F32, {50, 1}, testing::little_endian(x)),
                testing::make_array("y", DType::U8, {50}, y)},
               source);
  const Artifact input{.name = "dataset",
                       .kind = "dataset",
                       .path = version.file,
                       .content_id = version.id,
                       .producer = "import"};
  const auto outputs = split(input, {{"validation", 10}, {"order", "last"}});
  ASSERT_EQ(outputs.size(), 2u);
  for (const Artifact& part : outputs) {
    const DatasetVersion stored = read_dataset_info(part.path);
    EXPECT_EQ(stored.source["categories"], source["categories"]) << part.name;
    EXPECT_EQ(stored.source["feature_columns"], source["feature_columns"]) << part.name;
  }
}

TEST_F(SplitStage, RandomPartsAreDisjointAndCoverTheInput) {
  const Artifact input = dataset(600);
  const auto outputs = split(input, {{"validation", 0.25}, {"seed", 3}});
  const Part train = read_part(outputs[0]);
  const Part validation = read_part(outputs[1]);
  ASSERT_EQ(validation.ids.size(), 150u);
  ASSERT_EQ(train.ids.size(), 450u);
  // Rows keep their input order within each part, and each row is whole.
  EXPECT_TRUE(std::is_sorted(train.ids.begin(), train.ids.end()));
  EXPECT_TRUE(std::is_sorted(validation.ids.begin(), validation.ids.end()));
  for (const Part* part : {&train, &validation}) {
    for (std::size_t r = 0; r < part->ids.size(); ++r) {
      const std::int32_t id = part->ids[r];
      EXPECT_EQ(part->x[3 * r + 1], 7 * id);
      EXPECT_EQ(part->x[3 * r + 2], -id);
      EXPECT_EQ(part->y[r], label_of(id));
      EXPECT_EQ(part->w[r], static_cast<float>(id) / 2);
    }
  }
  std::vector<std::int32_t> all = train.ids;
  all.insert(all.end(), validation.ids.begin(), validation.ids.end());
  std::sort(all.begin(), all.end());
  std::vector<std::int32_t> expected(600);
  for (int i = 0; i < 600; ++i) expected[static_cast<std::size_t>(i)] = i;
  EXPECT_EQ(all, expected);  // disjoint (no id twice) and complete
  // Not the last rows: a random draw spreads over the whole range.
  EXPECT_LT(validation.ids.front(), 100);
  EXPECT_GT(validation.ids.back(), 500);
}

TEST_F(SplitStage, SameSeedSameVersionsOtherSeedOtherRows) {
  const Artifact input = dataset(600);
  const auto first = split(input, {{"validation", 60}, {"seed", 11}});
  const auto again = split(input, {{"validation", 60}, {"seed", 11}});
  EXPECT_EQ(first[0].content_id, again[0].content_id);
  EXPECT_EQ(first[1].content_id, again[1].content_id);
  EXPECT_EQ(testing::read_bytes(first[1].path), testing::read_bytes(again[1].path));
  const auto other = split(input, {{"validation", 60}, {"seed", 12}});
  EXPECT_NE(other[1].content_id, first[1].content_id);
  const auto first_ids = read_part(first[1]).ids;
  const auto other_ids = read_part(other[1]).ids;
  const auto shared = std::count_if(other_ids.begin(), other_ids.end(), [&](std::int32_t id) {
    return std::binary_search(first_ids.begin(), first_ids.end(), id);
  });
  EXPECT_LT(shared, 30);  // about 60 * 60 / 600 = 6 by chance
}

TEST_F(SplitStage, StratifiedKeepsEachClassShareWithinOneRow) {
  const Artifact input = dataset(600);
  for (const double validation : {101.0, 0.15, 7.0}) {
    const auto outputs =
        split(input, {{"validation", validation}, {"stratify", true}, {"seed", 5}});
    const Part part = read_part(outputs[1]);
    const double total = validation >= 1 ? validation : std::round(validation * 600);
    ASSERT_EQ(part.ids.size(), static_cast<std::size_t>(total));
    std::map<int, int> counts;
    for (const std::uint8_t label : part.y) ++counts[label];
    const std::map<int, double> share = {{0, 0.6}, {1, 0.3}, {2, 0.1}};
    for (const auto& [label, fraction] : share)
      EXPECT_LT(std::abs(counts[label] - fraction * total), 1.0)
          << "class " << label << " of " << total;
  }
  const auto outputs = split(input, {{"validation", 101}, {"stratify", true}, {"seed", 5}});
  std::map<int, int> counts;
  for (const std::uint8_t label : read_part(outputs[1]).y) ++counts[label];
  // 60.6, 30.3, 10.1 -> 60, 30, 10 plus the one leftover row to the largest remainder (0.6).
  EXPECT_EQ(counts, (std::map<int, int>{{0, 61}, {1, 30}, {2, 10}}));
}

TEST_F(SplitStage, ManyChunksRandomSplit) {
  // 400000 rows of 12 + 4 + 1 bytes: x (4.8 MB) spans ten 512 KiB chunks and two
  // 4 MiB read blocks.
  const Artifact input = dataset(400000);
  const auto outputs = split(input, {{"validation", 10000}, {"seed", 1}});
  const Part validation = read_part(outputs[1]);
  const Part train = read_part(outputs[0]);
  ASSERT_EQ(validation.ids.size(), 10000u);
  ASSERT_EQ(train.ids.size(), 390000u);
  std::vector<bool> seen(400000, false);
  for (const Part* part : {&train, &validation}) {
    for (std::size_t r = 0; r < part->ids.size(); ++r) {
      const auto id = static_cast<std::size_t>(part->ids[r]);
      ASSERT_FALSE(seen[id]) << "row " << id << " twice";
      seen[id] = true;
      ASSERT_EQ(part->w[r], static_cast<float>(id) / 2);
    }
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), true), 400000);
}

TEST_F(SplitStage, ErrorsNameTheStageAndKey) {
  const Artifact input = dataset(600);
  EXPECT_THAT(
      error_of(input, {{"validation", 600}}),
      HasSubstr(
          "check.with.validation: 600 rows leave no training rows: the dataset has 600 rows"));
  EXPECT_THAT(error_of(input, {{"validation", 0.0001}}),
              HasSubstr("check.with.validation: 0.0001 of 600 rows is 0 rows"));
  EXPECT_THAT(error_of(input, {{"validation", 0}}), HasSubstr("config error: "));
  EXPECT_THAT(
      error_of(input, {{"validation", 0}}),
      HasSubstr("check.with.validation: 0 is not a row count (>= 1) or a fraction (0 < f < 1)"));
  EXPECT_THAT(error_of(input, {{"validation", 2.5}}),
              HasSubstr("check.with.validation: 2.5 is neither"));
  EXPECT_THAT(error_of(input, {{"validation", 10}, {"order", "last"}, {"stratify", true}}),
              HasSubstr("check.with.stratify: needs order: random"));
  const Artifact float_labels = dataset(100, DType::F32);
  EXPECT_EQ(error_of(float_labels, {{"validation", 10}, {"stratify", true}}),
            "data error: stage 'check': check.with.stratify: dataset " +
                float_labels.content_id.substr(0, 12) +
                " has f32 labels in y; stratifying needs integer classes");
  const Artifact unlabelled = dataset(100, DType::U8, false);
  EXPECT_EQ(error_of(unlabelled, {{"validation", 10}, {"stratify", true}}),
            "data error: stage 'check': check.with.stratify: dataset " +
                unlabelled.content_id.substr(0, 12) + " has no label array y");
}

}  // namespace
}  // namespace kiln::data
