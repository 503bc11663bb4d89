// kiln data import / ls / show / verify / diff through the real executable, the
// Fashion-MNIST acceptance checks, and validate/drift stages in a pipeline.
#include <kiln/data/dataset.h>

#include "data/hdf5_edit.h"
#include "data_cli/data_cli_fixture.h"

#include <nlohmann/json.hpp>

#include <regex>

namespace kiln::test {
namespace {

namespace fs = std::filesystem;
using data::testing::Bytes;
using data::testing::flip_one_byte;
using data::testing::gzip;
using data::testing::idx_file;
using data::testing::noise;
using ::testing::HasSubstr;

const fs::path kFashionMnist = "/usr/share/datasets/fashion-mnist";

// The id (first word of the first line) `kiln data import` printed.
std::string imported_id(const CommandResult& result) {
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const auto lines = lines_of(result.out);
  return lines.empty() ? "" : lines[0].substr(0, lines[0].find(' '));
}

class DataCommands : public DataCliTest {
 protected:
  void SetUp() override {
    const Bytes images = idx_file(0x08, {20, 4, 4}, noise(320, 2));
    write("images.idx", images);
    write("images.idx.gz", gzip(images));
    Bytes labels(20);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::uint8_t>(i % 3);
    write("labels.idx", idx_file(0x08, {20}, labels));
  }
};

TEST_F(DataCommands, ImportTwiceGivesOneVersionAndLsShowsIt) {
  const std::string plain =
      imported_id(kiln({"data", "import", "images.idx", "labels.idx", "--name", "small"}));
  const std::string zipped =
      imported_id(kiln({"data", "import", "images.idx.gz", "labels.idx", "--name", "small"}));
  EXPECT_EQ(plain.size(), 64u);
  EXPECT_EQ(plain, zipped);
  EXPECT_EQ(stored_versions(), 1u);
  const CommandResult ls = kiln({"data", "ls"});
  ASSERT_EQ(ls.exit_code, 0);
  ASSERT_EQ(lines_of(ls.out).size(), 2u);
  EXPECT_THAT(lines_of(ls.out)[1],
              ::testing::MatchesRegex(plain.substr(0, 12) +
                                      "  small .* 20  x u8 \\[20, 4, 4\\], y u8 \\[20\\]"));
}

TEST_F(DataCommands, ShowPrintsMetadataSourcesAndLabels) {
  const std::string parent =
      imported_id(kiln({"data", "import", "images.idx", "--name", "x-only"}));
  const std::string id = imported_id(kiln(
      {"data", "import", "images.idx", "labels.idx", "--name", "small", "--parent", "x-only"}));
  const CommandResult show = kiln({"data", "show", "small", "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  const auto json = nlohmann::json::parse(show.out);
  EXPECT_EQ(json["id"], id);
  EXPECT_EQ(json["parent"], parent);
  EXPECT_EQ(json["rows"], 20);
  EXPECT_EQ(json["labels"], nlohmann::json({{"0", 7}, {"1", 7}, {"2", 6}}));
  EXPECT_EQ(json["source"]["files"][0]["path"], path("images.idx"));
  const CommandResult text = kiln({"data", "show", id.substr(0, 10)});
  EXPECT_THAT(text.out, HasSubstr("arrays:   x u8 [20, 4, 4], y u8 [20]"));
}

TEST_F(DataCommands, VerifyNamesTheArrayWithAFlippedByte) {
  const std::string id =
      imported_id(kiln({"data", "import", "images.idx", "labels.idx", "--name", "small"}));
  const CommandResult ok = kiln({"data", "verify", "small"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "ok: " + id + " (small): 2 arrays match the content id\n");
  const fs::path copy = dir_ / "copy.h5";
  fs::copy_file(datasets() / (id + ".h5"), copy);
  flip_one_byte(copy, "x", 77);
  const CommandResult bad = kiln({"data", "verify", copy.string()});
  EXPECT_EQ(bad.exit_code, 3);
  EXPECT_EQ(bad.out, "");
  ASSERT_EQ(lines_of(bad.err).size(), 1u);
  EXPECT_THAT(bad.err,
              HasSubstr("kiln: data error: " + copy.string() + ": dataset " + id.substr(0, 12) +
                        " (small) is damaged: array 'x' does not "
                        "match its recorded SHA-256"));
  EXPECT_THAT(bad.err, ::testing::Not(HasSubstr("array 'y'")));
}

TEST_F(DataCommands, DiffShowsShapesBalanceAndChangedRows) {
  imported_id(kiln({"data", "import", "images.idx", "labels.idx", "--name", "a"}));
  Bytes labels(20, 0);
  labels[4] = 2;
  write("other-labels.idx", idx_file(0x08, {20}, labels));
  imported_id(kiln({"data", "import", "images.idx", "other-labels.idx", "--name", "b"}));
  const CommandResult diff = kiln({"data", "diff", "a", "b"});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_THAT(diff.out, HasSubstr("array x: u8 [20, 4, 4] -> u8 [20, 4, 4], 0 rows changed\n"));
  EXPECT_THAT(diff.out, HasSubstr("array y: u8 [20] -> u8 [20], 13 rows changed (first: 1, 2, "));
  EXPECT_THAT(diff.out, HasSubstr("  0: 7 -> 19 (+12)\n"));
  EXPECT_THAT(diff.out, HasSubstr("rows changed: 13 of 20\n"));
  const auto json = nlohmann::json::parse(kiln({"data", "diff", "a", "b", "--json"}).out);
  EXPECT_EQ(json["changed_rows"], 13);
}

// Acceptance 1 through the CLI: the same id twice, and h5py reads back arrays
// equal to the IDX contents.
TEST_F(DataCommands, FashionMnistTwiceIsOneVersionThatH5pyReadsBack) {
  const fs::path images = kFashionMnist / "t10k-images-idx3-ubyte.gz";
  const fs::path labels = kFashionMnist / "t10k-labels-idx1-ubyte.gz";
  if (!fs::exists(images)) GTEST_SKIP() << "Fashion-MNIST is not installed in " << kFashionMnist;
  if (run_command({"/usr/bin/python3", "-c", "import h5py, numpy"}).exit_code != 0)
    GTEST_SKIP() << "/usr/bin/python3 has no h5py (Debian package python3-h5py)";
  const std::string first = imported_id(kiln({"data", "import", images, labels, "--name", "fm"}));
  const std::string second = imported_id(kiln({"data", "import", images, labels, "--name", "fm"}));
  EXPECT_EQ(first, second);
  const std::string script = R"(
import gzip, sys, h5py, numpy as np
with gzip.open(sys.argv[2]) as f: images = np.frombuffer(f.read(), np.uint8, offset=16)
with gzip.open(sys.argv[3]) as f: labels = np.frombuffer(f.read(), np.uint8, offset=8)
with h5py.File(sys.argv[1], "r") as h:
    assert h.attrs["kiln.id"] == sys.argv[4], h.attrs["kiln.id"]
    assert (h["x"][...] == images.reshape(10000, 28, 28)).all()
    assert (h["y"][...] == labels).all()
print("equal")
)";
  const CommandResult check =
      run_command({"/usr/bin/python3", "-c", script, (datasets() / (first + ".h5")).string(),
                   images, labels, first});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_EQ(check.out, "equal\n");
}

// validate and drift in a pipeline: the unshifted copy passes, a brightness
// shift fails the run with exit code 3.
TEST_F(DataCommands, DriftStageFailsThePipelineOnAShift) {
  Bytes pixels(2000 * 16), brighter(2000 * 16);
  for (std::size_t i = 0; i < pixels.size(); ++i) {
    pixels[i] = static_cast<std::uint8_t>((i * 37) % 200);
    brighter[i] = static_cast<std::uint8_t>(pixels[i] + 51);
  }
  write("train.idx", idx_file(0x08, {2000, 4, 4}, pixels));
  write("same.idx", idx_file(0x08, {2000, 4, 4}, pixels));
  write("bright.idx", idx_file(0x08, {2000, 4, 4}, brighter));
  write_text(dir_ / "p.yaml", R"(stages:
  train_data:
    uses: import
    with: {source: train.idx, labels: labels2000.idx, name: train}
  new_data:
    uses: import
    with: {source: NEW, labels: labels2000.idx, name: new}
  check:
    uses: validate
    needs: [new_data]
    with: {classes: [0, 1, 2], ranges: {x: [0, 255]}}
  drift:
    uses: drift
    needs: [train_data, check]
    with: {reference: train_data}
)");
  Bytes labels(2000);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::uint8_t>(i % 3);
  write("labels2000.idx", idx_file(0x08, {2000}, labels));
  const std::string pipeline = read_text(dir_ / "p.yaml");
  write_text(dir_ / "same.yaml", std::regex_replace(pipeline, std::regex("NEW"), "same.idx"));
  write_text(dir_ / "bright.yaml", std::regex_replace(pipeline, std::regex("NEW"), "bright.idx"));
  const CommandResult same = kiln({"run", "same.yaml"});
  EXPECT_EQ(same.exit_code, 0) << same.err;
  const CommandResult bright = kiln({"run", "bright.yaml"});
  EXPECT_EQ(bright.exit_code, 3);
  EXPECT_THAT(lines_of(bright.err).back(),
              ::testing::MatchesRegex("kiln: data error: stage 'drift' \\(drift\\): dataset "
                                      "[0-9a-f]{12} drifted from reference [0-9a-f]{12}: 16 of 16 "
                                      "elements features drift .*"));
}

}  // namespace
}  // namespace kiln::test
