// What kiln reads back from a registry that someone else edited: a model name in
// meta.yaml that could not be given on the command line, and symbolic links that
// lead out of the registry.
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/registry/registry_root.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "registry/registry_test_support.h"

namespace kiln::registry {
namespace {
namespace fs = std::filesystem;
using ScratchDir = kiln::test::TempDir;
using ::testing::HasSubstr;

std::string data_error(const std::function<void()>& body) {
  try {
    body();
  } catch (const DataError& error) {
    return error.what();
  }
  ADD_FAILURE() << "no DataError";
  return "";
}

void replace_name(const fs::path& meta, const std::string& name) {
  std::string text = kiln::test::read_text(meta);
  const std::size_t at = text.find("name: \"m\"");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, 9, "name: \"" + name + "\"");
  write_file_atomic(meta, text);
}

// The name in meta.yaml becomes an output file name (export-onnx writes
// <name>-v<N>.onnx), so it is checked as a name typed on the command line is.
TEST(HostileRegistry, ModelNameReadBackFromMetaYamlIsValidatedAgain) {
  ScratchDir scratch;
  MlflowStore store(scratch.path());
  store.create_model_version("m", "", "file:///m", "", {});
  const fs::path model_dir = store.mlruns() / "models" / "m";

  replace_name(model_dir / "version-1" / "meta.yaml", "../../evil");
  EXPECT_TRUE(store.list_versions("m").empty());  // skipped, with a warning naming the file
  EXPECT_THROW(store.get_version("m", 1), ConfigError);

  replace_name(model_dir / "meta.yaml", "a/b");
  EXPECT_EQ(data_error([&] { store.create_model_version("m", "", "file:///m", "", {}); }),
            (model_dir / "meta.yaml").string() +
                ": registry: model name 'a/b': must not contain '/' or '\\' nor be '.' or start "
                "with '..'");
}

class HostileLinks : public ::testing::Test {
 protected:
  void SetUp() override {
    kiln::test::write_text(outside_ / "secret", "17000 42 0\n");
    run_ = store_.start_run(store_.ensure_experiment("e"), "r");
    run_->log_metric("loss", 1.0, 0);
  }
  ScratchDir scratch_;
  ScratchDir outside_;
  MlflowStore store_{scratch_.path()};
  std::unique_ptr<MlflowRun> run_;
};

TEST_F(HostileLinks, LinkedMetricFileIsRefused) {
  fs::remove(run_->directory() / "metrics" / "loss");
  fs::create_symlink(outside_ / "secret", run_->directory() / "metrics" / "loss");
  EXPECT_THAT(data_error([&] { run_->metric_history("loss"); }),
              HasSubstr((run_->directory() / "metrics" / "loss").string() + ": resolves to " +
                        fs::canonical(outside_ / "secret").string() + ", outside "));
}

TEST_F(HostileLinks, LinkedTagIsNotListed) {
  fs::create_symlink(outside_ / "secret", run_->directory() / "tags" / "stolen");
  EXPECT_EQ(run_->tags().count("stolen"), 0u);
  EXPECT_EQ(run_->tags().count("mlflow.runName"), 1u);
}

TEST_F(HostileLinks, LinkedRunDirectoryIsRefused) {
  const fs::path run_dir = run_->directory();
  const std::string run_id = run_->run_id();
  run_.reset();
  fs::rename(run_dir, outside_ / "moved");
  fs::create_symlink(outside_ / "moved", run_dir);
  EXPECT_THAT(data_error([&] { store_.open_run(run_id); }),
              HasSubstr(run_dir.string() + ": resolves to "));
}

TEST_F(HostileLinks, LinkedModelDirectoryIsRefused) {
  store_.create_model_version("m", "", "file:///m", "", {});
  const fs::path model_dir = store_.mlruns() / "models" / "m";
  fs::rename(model_dir, outside_ / "m");
  fs::create_symlink(outside_ / "m", model_dir);
  EXPECT_THAT(data_error([&] { store_.list_versions("m"); }),
              HasSubstr(model_dir.string() + ": resolves to "));
}

// Writes follow no link out of the run: the file outside stays as it was.
TEST_F(HostileLinks, MetricIsNotAppendedThroughALink) {
  const fs::path metric = run_->directory() / "metrics" / "loss";
  fs::remove(metric);
  fs::create_symlink(outside_ / "secret", metric);
  EXPECT_THAT(data_error([&] { run_->log_metric("loss", 2.0, 1); }),
              HasSubstr(metric.string() + ": resolves to "));
  fs::remove(metric);
  fs::create_symlink(outside_ / "absent", metric);  // dangling: O_CREAT would follow it
  EXPECT_THAT(data_error([&] { run_->log_metric("loss", 2.0, 1); }),
              HasSubstr(metric.string() + ": is a symbolic link"));
  EXPECT_FALSE(fs::exists(outside_ / "absent"));
  EXPECT_EQ(kiln::test::read_text(outside_ / "secret"), "17000 42 0\n");
}

TEST_F(HostileLinks, TagsAndParamsAreNotWrittenThroughALinkedFolder) {
  const fs::path tags = run_->directory() / "tags";
  fs::remove_all(tags);
  fs::create_symlink(outside_.path(), tags);
  EXPECT_THAT(data_error([&] { run_->set_tag("note", "x"); }),
              HasSubstr((tags / "note").string() + ": resolves to "));
  fs::remove_all(run_->directory() / "params");
  fs::create_symlink(outside_.path(), run_->directory() / "params");
  EXPECT_THAT(data_error([&] { run_->log_param("lr", "0.1"); }),
              HasSubstr((run_->directory() / "params" / "lr").string() + ": resolves to "));
  EXPECT_FALSE(fs::exists(outside_ / "note"));
  EXPECT_FALSE(fs::exists(outside_ / "lr"));
}

TEST(AppendLine, RefusesALinkInsideTheDirectoryToo) {
  ScratchDir scratch;
  write_file_atomic(scratch.path() / "target", "a\n");
  fs::create_symlink(scratch.path() / "target", scratch.path() / "link");
  EXPECT_EQ(
      data_error([&] { append_line(scratch.path() / "link", "b"); }),
      (scratch.path() / "link").string() + ": is a symbolic link; kiln appends through no link");
  EXPECT_EQ(kiln::test::read_text(scratch.path() / "target"), "a\n");
}

TEST_F(HostileLinks, LinksInsideTheRegistryAreFollowed) {
  const fs::path copy = run_->directory() / "metrics" / "loss-copy";
  fs::copy_file(run_->directory() / "metrics" / "loss", copy);
  fs::create_symlink(copy, run_->directory() / "metrics" / "alias");
  EXPECT_EQ(run_->metric_history("alias").size(), 1u);
  EXPECT_EQ(check_contained(scratch_.path(), run_->directory() / "metrics" / "alias"),
            fs::canonical(copy));
}

}  // namespace
}  // namespace kiln::registry
