// The import plugin's stages `import` and `idx_import`, loaded the way the engine
// loads them (dlopen + the entry symbol) and run against a FakeContext.
#include <kiln/data/dataset.h>
#include <kiln/error.h>
#include <kiln/hash.h>
#include <kiln/version.h>

#include "data/data_test_support.h"
#include "data/fake_context.h"
#include "data/npy_support.h"
#include "data/npz_support.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;
using testing::Bytes;
using testing::FakeContext;
using testing::gzip;
using ::testing::HasSubstr;
using testing::idx_file;
using testing::noise;
using testing::ScratchDir;
using testing::write_bytes;

const fs::path kPluginFile = fs::path(KILN_BINARY_DIR) / "lib/kiln/plugins/kiln-idx_import.so";

class ImportPlugin : public ::testing::Test {
 protected:
  void SetUp() override {
    // CMake builds it before this suite (DEPENDS): missing is a build bug.
    ASSERT_TRUE(fs::exists(kPluginFile))
        << kPluginFile << " is not built (target kiln_plugin_idx_import)";
    types_ = testing::load_plugin_types(kPluginFile, &descriptor_);
    ASSERT_EQ(types_.size(), 2u);
  }

  void write_inputs(std::uint32_t image_rows, std::uint32_t label_rows) {
    write_bytes(dir_ / "images.gz", gzip(idx_file(0x08, {image_rows, 28, 28},
                                                  noise(std::size_t{image_rows} * 784, 1))));
    Bytes labels(label_rows);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::uint8_t>(i % 7);
    write_bytes(dir_ / "labels.gz", gzip(idx_file(0x08, {label_rows}, labels)));
  }

  FakeContext context(const std::string& type, nlohmann::json values) {
    return FakeContext(dir_.path(), type,
                       testing::with_defaults(testing::find_type(types_, type), std::move(values)));
  }
  FakeContext idx_context(const std::string& images = "images.gz",
                          const std::string& labels = "labels.gz") {
    return context("idx_import", {{"images", (dir_ / images).string()},
                                  {"labels", (dir_ / labels).string()},
                                  {"name", "tiny"}});
  }

  void run(FakeContext& context) { testing::find_type(types_, context.type()).run(context); }

  std::string run_error(FakeContext& context) {
    try {
      run(context);
    } catch (const DataError& error) {
      return error.what();
    }
    ADD_FAILURE() << "the stage did not throw DataError";
    return {};
  }

  ScratchDir dir_;
  const KilnPluginDescriptor* descriptor_ = nullptr;
  std::vector<StageType> types_;
};

TEST_F(ImportPlugin, DescribesBothStageTypes) {
  EXPECT_EQ(descriptor_->abi_version, static_cast<std::uint32_t>(KILN_ABI_VERSION));
  EXPECT_STREQ(descriptor_->name, "idx_import");
  EXPECT_STREQ(descriptor_->version, "0.2.0");
  const StageType& idx = testing::find_type(types_, "idx_import");
  EXPECT_TRUE(idx.consumes.empty());
  EXPECT_EQ(idx.produces, (std::vector<std::string>{"dataset"}));
  for (const char* name : {"images", "labels"}) {
    const ParamSpec* spec = idx.params.find(name);
    ASSERT_NE(spec, nullptr) << name;
    EXPECT_EQ(spec->type, ParamType::Path);
    EXPECT_FALSE(spec->default_value.has_value());
  }
  EXPECT_EQ(idx.params.find("name")->default_value, nlohmann::json("dataset"));
  const StageType& import = testing::find_type(types_, "import");
  EXPECT_EQ(import.params.find("source")->type, ParamType::Path);
  EXPECT_EQ(import.params.find("labels")->default_value, nlohmann::json(nullptr));
  EXPECT_EQ(import.params.find("format")->choices,
            (std::vector<std::string>{"auto", "idx", "csv", "npy", "npz", "hdf5"}));
}

TEST_F(ImportPlugin, IdxImportWritesADatasetVersion) {
  write_inputs(30, 30);
  FakeContext ctx = idx_context();
  run(ctx);

  ASSERT_EQ(ctx.emitted.size(), 1u);
  const Artifact& artifact = ctx.emitted.front();
  EXPECT_EQ(artifact.name, "dataset");
  EXPECT_EQ(artifact.kind, "dataset");
  const auto version = DatasetStore(ctx.registry_root()).find("tiny");
  ASSERT_TRUE(version.has_value());
  EXPECT_EQ(artifact.path, version->file);
  EXPECT_TRUE(artifact.path.is_absolute());
  EXPECT_EQ(artifact.content_id, version->id);
  EXPECT_EQ(artifact.meta["id"], version->id);
  EXPECT_EQ(artifact.meta["rows"], 30);
  EXPECT_EQ(artifact.meta["x_shape"], nlohmann::json({30, 28, 28}));
  EXPECT_EQ(artifact.meta["classes"], 7);
  EXPECT_EQ(version->source["format"], "idx");
  EXPECT_EQ(version->source["files"][0]["path"], (dir_ / "images.gz").string());
  EXPECT_EQ(version->source["files"][1]["role"], "y");
  EXPECT_EQ(version->source["files"][1]["sha256"], sha256_file(dir_ / "labels.gz"));
  EXPECT_EQ(read_array(version->file, "x").bytes, noise(30 * 784, 1));
  EXPECT_EQ(read_array(version->file, "y").shape, (std::vector<std::int64_t>{30}));
  EXPECT_TRUE(ctx.progress_.finished);
}

TEST_F(ImportPlugin, TruncatedLabelsLeaveTheRegistryUntouched) {
  write_inputs(30, 30);
  const Bytes labels = testing::read_bytes(dir_ / "labels.gz");
  write_bytes(dir_ / "cut.gz", Bytes(labels.begin(), labels.end() - 10));
  FakeContext ctx = idx_context("images.gz", "cut.gz");
  EXPECT_THAT(run_error(ctx), HasSubstr("cut.gz: truncated gzip stream"));
  EXPECT_TRUE(ctx.emitted.empty());
  EXPECT_FALSE(fs::exists(ctx.registry_root()));
}

TEST_F(ImportPlugin, RowMismatchNamesBothFiles) {
  write_inputs(30, 29);
  FakeContext ctx = idx_context();
  EXPECT_THAT(run_error(ctx), HasSubstr((dir_ / "images.gz").string() + " has 30 rows but " +
                                        (dir_ / "labels.gz").string() + " has 29"));
  EXPECT_FALSE(fs::exists(ctx.registry_root()));
}

TEST_F(ImportPlugin, LabelsMustBeOneIntegerPerRow) {
  write_inputs(4, 4);
  write_bytes(dir_ / "wide.idx", idx_file(0x08, {4, 2}, Bytes(8, 1)));
  FakeContext ctx = idx_context("images.gz", "wide.idx");
  EXPECT_THAT(run_error(ctx), HasSubstr("wide.idx: labels must be one integer per row (rank 1), "
                                        "got shape [4, 2] of u8"));
  EXPECT_FALSE(fs::exists(ctx.registry_root()));
}

TEST_F(ImportPlugin, ImportStageReadsACsvWithoutLabelsFile) {
  kiln::test::write_text(dir_ / "t.csv", "a,label,b\n1,0,2\n3,1,4\n");
  FakeContext ctx = context("import", {{"source", (dir_ / "t.csv").string()}, {"name", "csv"}});
  run(ctx);
  ASSERT_EQ(ctx.emitted.size(), 1u);
  const auto version = read_dataset_info(ctx.emitted.front().path);
  EXPECT_EQ(version.source["format"], "csv");
  EXPECT_EQ(read_array(version.file, "x").shape, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(ctx.emitted.front().meta["classes"], 2);
}

TEST_F(ImportPlugin, ImportStageTakesTheCsvDialectAndColumnRoles) {
  kiln::test::write_text(dir_ / "t.csv", "id7;1,5;0;9\nid8;;1;8\n");
  FakeContext ctx = context("import", {{"source", (dir_ / "t.csv").string()},
                                       {"delimiter", ";"},
                                       {"header", false},
                                       {"label_column", "2"},
                                       {"feature_columns", {"3"}},
                                       {"ignored_columns", {"0"}}});
  run(ctx);
  const auto version = read_dataset_info(ctx.emitted.front().path);
  EXPECT_EQ(testing::values_of<float>(read_array(version.file, "x").bytes),
            (std::vector<float>{9, 8}));
  EXPECT_EQ(version.source["feature_columns"], nlohmann::json({"3"}));
  EXPECT_EQ(version.source["delimiter"], ";");
  EXPECT_EQ(version.source["header"], false);
  kiln::test::write_text(dir_ / "t.tsv", "1.5\t0\n2\t1\n");
  FakeContext tabs = context("import", {{"source", (dir_ / "t.tsv").string()},
                                        {"delimiter", "tab"},
                                        {"header", false},
                                        {"label_column", "1"}});
  run(tabs);
  EXPECT_EQ(testing::values_of<float>(read_array(tabs.emitted.front().path, "x").bytes),
            (std::vector<float>{1.5f, 2}));
}

TEST_F(ImportPlugin, ImportStageTakesNpzArraysByName) {
  testing::write_zip(dir_ / "a.npz",
                     {{"images.npy", testing::npy_file("|u1", "(2, 2)", {1, 2, 3, 4})},
                      {"labels.npy", testing::npy_file("|u1", "(2,)", {0, 1})}});
  FakeContext ctx = context(
      "import", {{"source", (dir_ / "a.npz").string()}, {"arrays", {"x=images", "y=labels"}}});
  run(ctx);
  EXPECT_EQ(ctx.emitted.front().meta["arrays"]["x"]["shape"], nlohmann::json({2, 2}));
  EXPECT_EQ(read_dataset_info(ctx.emitted.front().path).source["format"], "npz");
  FakeContext missing = context("import", {{"source", (dir_ / "a.npz").string()}});
  EXPECT_EQ(run_error(missing),
            (dir_ / "a.npz").string() + ": no member 'x' in the archive (members: images, labels)");
}

TEST_F(ImportPlugin, ImportStageReadsAnNpyPair) {
  write_bytes(dir_ / "x.npy", testing::npy_file("<f4", "(2, 3)",
                                                testing::little_endian<float>({1, 2, 3, 4, 5, 6})));
  write_bytes(dir_ / "y.npy",
              testing::npy_file("<i8", "(2,)", testing::little_endian<std::int64_t>({0, 1})));
  FakeContext ctx = context("import", {{"source", (dir_ / "x.npy").string()},
                                       {"labels", (dir_ / "y.npy").string()},
                                       {"name", "npy"}});
  run(ctx);
  const Array y = read_array(ctx.emitted.front().path, "y");
  EXPECT_EQ(y.dtype, DType::I64);
  EXPECT_EQ(ctx.emitted.front().meta["arrays"]["x"]["dtype"], "f32");
}

TEST_F(ImportPlugin, ImportStageCopiesHdf5ArraysAndKeepsTheId) {
  write_inputs(12, 12);
  FakeContext first = idx_context();
  run(first);
  FakeContext copy = context(
      "import",
      {{"source", first.emitted.front().path.string()}, {"name", "copy"}, {"parent", "tiny"}});
  run(copy);
  EXPECT_EQ(copy.emitted.front().content_id, first.emitted.front().content_id);
}

}  // namespace
}  // namespace kiln::data
