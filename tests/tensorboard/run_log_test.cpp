// The event file writer and the RunLog decorator: every call reaches the wrapped
// run, every metric also becomes one framed, checksummed scalar event.
#include <kiln/error.h>
#include <kiln/tensorboard.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <vector>

#include "support/support.h"

namespace kiln::tensorboard {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;

std::uint64_t little_endian(std::string_view bytes) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i)
    value |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  return value;
}

// The payloads of a TFRecord file, each frame's CRCs checked.
std::vector<std::string> read_records(const fs::path& path) {
  const std::string file = test::read_text(path);
  std::vector<std::string> payloads;
  std::size_t at = 0;
  while (at < file.size()) {
    const std::string_view rest = std::string_view(file).substr(at);
    EXPECT_GE(rest.size(), 16u) << "truncated record at byte " << at;
    if (rest.size() < 16) break;
    const std::uint64_t length = little_endian(rest.substr(0, 8));
    EXPECT_EQ(little_endian(rest.substr(8, 4)), masked_crc32c(rest.substr(0, 8)));
    const std::string_view payload = rest.substr(12, length);
    EXPECT_EQ(little_endian(rest.substr(12 + length, 4)), masked_crc32c(payload));
    payloads.emplace_back(payload);
    at += 16 + length;
  }
  return payloads;
}

// An event without its wall_time (the first 9 bytes: key + fixed64).
std::string without_wall_time(const std::string& event) { return event.substr(9); }

std::string expected_scalar(std::int64_t step, std::string_view tag, double value) {
  return without_wall_time(scalar_event(0, step, tag, static_cast<float>(value)));
}

struct Call {
  std::string what, key, value;
  bool operator==(const Call&) const = default;
};

// Records what reaches it; refuses the metric key "bad", as a real store refuses
// an invalid key.
class RecordingRunLog final : public RunLog {
 public:
  explicit RecordingRunLog(fs::path dir) : dir_(std::move(dir)) {}
  const std::string& run_id() const override { return id_; }
  const std::string& experiment_id() const override { return experiment_; }
  void log_metric(std::string_view key, double value, std::int64_t step) override {
    if (key == "bad") throw ConfigError("bad metric key");
    calls.push_back(
        {"metric", std::string(key), std::to_string(value) + "@" + std::to_string(step)});
  }
  void log_param(std::string_view key, std::string_view value) override {
    calls.push_back({"param", std::string(key), std::string(value)});
  }
  void set_tag(std::string_view key, std::string_view value) override {
    calls.push_back({"tag", std::string(key), std::string(value)});
  }
  fs::path artifact_dir() override { return dir_; }

  std::vector<Call> calls;

 private:
  fs::path dir_;
  std::string id_ = "0123456789abcdef0123456789abcdef", experiment_ = "4";
};

TEST(EventFileWriter, StartsWithTheFileVersionThenOneRecordPerScalar) {
  const test::TempDir dir;
  fs::path path;
  {
    EventFileWriter writer(dir / "tb");
    path = writer.path();
    writer.add_scalar("train/loss", 2.5, 10);
    writer.add_scalar("train/loss", 1.25, 20);
    // Visible to a reader before close: nothing waits in a buffer.
    EXPECT_EQ(read_records(path).size(), 3u);
  }
  const auto records = read_records(path);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(without_wall_time(records[0]), without_wall_time(file_version_event(0)));
  EXPECT_EQ(without_wall_time(records[1]), expected_scalar(10, "train/loss", 2.5));
  EXPECT_EQ(without_wall_time(records[2]), expected_scalar(20, "train/loss", 1.25));
}

TEST(EventFileWriter, NamesTheFileAsTensorBoardExpectsAndNeverShares) {
  const test::TempDir dir;
  EventFileWriter first(dir.path()), second(dir.path());
  const std::regex name(R"(events\.out\.tfevents\.\d{10,}\.[^/]+)");
  EXPECT_TRUE(std::regex_match(first.path().filename().string(), name)) << first.path();
  EXPECT_NE(first.path(), second.path());
  EXPECT_EQ(first.path().parent_path(), dir.path());
}

TEST(EventFileWriter, ScalarsAfterCloseAreABug) {
  const test::TempDir dir;
  EventFileWriter writer(dir.path());
  writer.close();
  writer.close();  // idempotent
  EXPECT_THROW(writer.add_scalar("x", 1, 1), InternalError);
}

TEST(EventFileWriter, UnwritableDirectoryIsADataError) {
  const test::TempDir dir;
  test::write_text(dir / "file", "not a directory");
  EXPECT_THROW(EventFileWriter(dir / "file" / "tb"), DataError);
}

TEST(TensorBoardRunLog, ForwardsEveryCall) {
  const test::TempDir dir;
  RecordingRunLog inner(dir.path());
  TensorBoardRunLog log(inner);
  EXPECT_EQ(log.run_id(), inner.run_id());
  EXPECT_EQ(log.experiment_id(), "4");
  EXPECT_EQ(log.artifact_dir(), dir.path());
  log.log_param("lr", "0.1");
  log.set_tag("kiln.host", "h");
  log.log_metric("train/loss", 0.5, 3);
  EXPECT_THAT(inner.calls, ElementsAre(Call{"param", "lr", "0.1"}, Call{"tag", "kiln.host", "h"},
                                       Call{"metric", "train/loss", "0.500000@3"}));
}

TEST(TensorBoardRunLog, WritesEachMetricUnderArtifactsTensorboard) {
  const test::TempDir dir;
  RecordingRunLog inner(dir.path());
  TensorBoardRunLog log(inner);
  log.log_param("lr", "0.1");
  EXPECT_TRUE(log.event_file().empty()) << "no metric, no event file";
  EXPECT_FALSE(fs::exists(dir / "tensorboard"));
  log.log_metric("train/loss", 0.5, 3);
  log.log_metric("eval/accuracy", std::nan(""), 4);
  log.close();
  EXPECT_EQ(log.event_file().parent_path(), dir / "tensorboard");
  const auto records = read_records(log.event_file());
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(without_wall_time(records[1]), expected_scalar(3, "train/loss", 0.5));
  EXPECT_EQ(without_wall_time(records[2]), expected_scalar(4, "eval/accuracy", std::nan("")));
}

TEST(TensorBoardRunLog, AMetricTheRunRefusesIsNotWritten) {
  const test::TempDir dir;
  RecordingRunLog inner(dir.path());
  TensorBoardRunLog log(inner);
  log.log_metric("ok", 1, 1);
  EXPECT_THROW(log.log_metric("bad", 1, 2), ConfigError);
  EXPECT_EQ(read_records(log.event_file()).size(), 2u);
}

TEST(TensorBoardRunLog, MetricsAfterCloseGoToANewFile) {
  const test::TempDir dir;
  RecordingRunLog inner(dir.path());
  TensorBoardRunLog log(inner);
  log.log_metric("a", 1, 1);
  const fs::path first = log.event_file();
  log.close();
  log.log_metric("a", 2, 2);
  log.close();
  EXPECT_NE(log.event_file(), first);
  EXPECT_EQ(read_records(first).size(), 2u);
  EXPECT_EQ(read_records(log.event_file()).size(), 2u);
}

}  // namespace
}  // namespace kiln::tensorboard
