// The idx_import stage plugin, loaded the way the engine loads it (dlopen + the
// entry symbol) and run against a fake StageContext.
#include <kiln/data/dataset.h>
#include <kiln/error.h>
#include <kiln/hash.h>
#include <kiln/plugin.h>
#include <kiln/version.h>

#include "data/data_test_support.h"

#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;
using testing::Bytes;
using testing::gzip;
using ::testing::HasSubstr;
using testing::idx_file;
using testing::noise;
using testing::ScratchDir;
using testing::write_bytes;

const fs::path kPluginFile = fs::path(KILN_BINARY_DIR) / "lib/kiln/plugins/kiln-idx_import.so";

class CollectingRegistrar final : public StageRegistrar {
 public:
  void add(StageType type) override { types.push_back(std::move(type)); }
  std::vector<StageType> types;
};

class NullRunLog final : public RunLog {
 public:
  const std::string& run_id() const override { return id_; }
  const std::string& experiment_id() const override { return id_; }
  void log_metric(std::string_view, double, std::int64_t) override {}
  void log_param(std::string_view, std::string_view) override {}
  void set_tag(std::string_view, std::string_view) override {}
  fs::path artifact_dir() override { return {}; }

 private:
  std::string id_ = "0";
};

class RecordingProgress final : public Progress {
 public:
  void update(const ProgressUpdate& update) override { notes.push_back(update.note); }
  void finish() override { finished = true; }
  std::vector<std::string> notes;
  bool finished = false;
};

class FakeContext final : public StageContext {
 public:
  FakeContext(fs::path registry, nlohmann::json values)
      : params_("import", std::move(values), {}), registry_(std::move(registry)) {}
  const std::string& name() const override { return name_; }
  const std::string& type() const override { return type_; }
  const Params& params() const override { return params_; }
  const std::vector<Artifact>& inputs() const override { return inputs_; }
  const fs::path& work_dir() const override { return registry_; }
  const fs::path& resume_dir() const override { return registry_; }
  void emit(Artifact output) override { emitted.push_back(std::move(output)); }
  const fs::path& registry_root() const override { return registry_; }
  RunLog& run() override { return run_log_; }
  Progress& progress() override { return progress_; }
  bool stop_requested() const override { return false; }
  const Placement& placement() const override { return placement_; }

  std::vector<Artifact> emitted;
  RecordingProgress progress_;

 private:
  std::string name_ = "import";
  std::string type_ = "idx_import";
  Params params_;
  std::vector<Artifact> inputs_;
  fs::path registry_;
  NullRunLog run_log_;
  Placement placement_;
};

class IdxImportPlugin : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kPluginFile))
      GTEST_SKIP() << kPluginFile << " is not built (target kiln_plugin_idx_import)";
    // Kept loaded for the whole process: the stage's std::function points into it.
    void* module = dlopen(kPluginFile.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(module, nullptr) << dlerror();
    auto entry = reinterpret_cast<KilnPluginEntry>(dlsym(module, KILN_PLUGIN_ENTRY_SYMBOL));
    ASSERT_NE(entry, nullptr) << dlerror();
    descriptor_ = entry();
    CollectingRegistrar registrar;
    descriptor_->register_stages(registrar);
    ASSERT_EQ(registrar.types.size(), 1u);
    stage_ = std::move(registrar.types.front());
  }

  void run(FakeContext& context) { stage_.run(context); }

  void write_inputs(std::uint32_t image_rows, std::uint32_t label_rows) {
    write_bytes(dir_ / "images.gz", gzip(idx_file(0x08, {image_rows, 28, 28},
                                                  noise(std::size_t{image_rows} * 784, 1))));
    Bytes labels(label_rows);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::uint8_t>(i % 7);
    write_bytes(dir_ / "labels.gz", gzip(idx_file(0x08, {label_rows}, labels)));
  }

  FakeContext context(const std::string& images = "images.gz",
                      const std::string& labels = "labels.gz") {
    return FakeContext(dir_ / "registry", {{"images", (dir_ / images).string()},
                                           {"labels", (dir_ / labels).string()},
                                           {"name", "tiny"}});
  }

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
  StageType stage_;
};

TEST_F(IdxImportPlugin, DescribesItself) {
  EXPECT_EQ(descriptor_->abi_version, static_cast<std::uint32_t>(KILN_ABI_VERSION));
  EXPECT_STREQ(descriptor_->name, "idx_import");
  EXPECT_STREQ(descriptor_->version, "0.1.0");
  EXPECT_EQ(stage_.name, "idx_import");
  EXPECT_FALSE(stage_.summary.empty());
  EXPECT_TRUE(stage_.consumes.empty());
  EXPECT_EQ(stage_.produces, (std::vector<std::string>{"dataset"}));
  const ParamSpec* images = stage_.params.find("images");
  ASSERT_NE(images, nullptr);
  EXPECT_EQ(images->type, ParamType::Path);
  EXPECT_FALSE(images->default_value.has_value());
  const ParamSpec* labels = stage_.params.find("labels");
  ASSERT_NE(labels, nullptr);
  EXPECT_EQ(labels->type, ParamType::Path);
  EXPECT_FALSE(labels->default_value.has_value());
  const ParamSpec* name = stage_.params.find("name");
  ASSERT_NE(name, nullptr);
  EXPECT_EQ(name->type, ParamType::String);
  EXPECT_EQ(name->default_value, nlohmann::json("dataset"));
}

TEST_F(IdxImportPlugin, ImportsImagesAndLabelsAsADatasetVersion) {
  write_inputs(30, 30);
  FakeContext ctx = context();
  run(ctx);

  ASSERT_EQ(ctx.emitted.size(), 1u);
  const Artifact& artifact = ctx.emitted.front();
  EXPECT_EQ(artifact.name, "dataset");
  EXPECT_EQ(artifact.kind, "dataset");
  const auto version = DatasetStore(dir_ / "registry").find("tiny");
  ASSERT_TRUE(version.has_value());
  EXPECT_EQ(artifact.path, version->file);
  EXPECT_TRUE(artifact.path.is_absolute());
  EXPECT_EQ(artifact.content_id, version->id);
  EXPECT_EQ(artifact.meta["id"], version->id);
  EXPECT_EQ(artifact.meta["name"], "tiny");
  EXPECT_EQ(artifact.meta["rows"], 30);
  EXPECT_EQ(artifact.meta["x_shape"], nlohmann::json({30, 28, 28}));
  EXPECT_EQ(artifact.meta["classes"], 7);
  EXPECT_EQ(version->source["images"]["path"], (dir_ / "images.gz").string());
  EXPECT_EQ(version->source["labels"]["sha256"], sha256_file(dir_ / "labels.gz"));
  EXPECT_EQ(read_array(version->file, "x").bytes, noise(30 * 784, 1));
  EXPECT_EQ(read_array(version->file, "y").shape, (std::vector<std::int64_t>{30}));
  EXPECT_EQ(ctx.progress_.notes.size(), 2u);
}

TEST_F(IdxImportPlugin, TruncatedLabelsLeaveTheRegistryUntouched) {
  write_inputs(30, 30);
  const Bytes labels = testing::read_bytes(dir_ / "labels.gz");
  write_bytes(dir_ / "cut.gz", Bytes(labels.begin(), labels.end() - 10));
  FakeContext ctx = context("images.gz", "cut.gz");
  EXPECT_THAT(run_error(ctx), HasSubstr("cut.gz: truncated gzip stream"));
  EXPECT_TRUE(ctx.emitted.empty());
  EXPECT_FALSE(fs::exists(dir_ / "registry"));
}

TEST_F(IdxImportPlugin, RowMismatchNamesBothFiles) {
  write_inputs(30, 29);
  FakeContext ctx = context();
  EXPECT_THAT(run_error(ctx), HasSubstr((dir_ / "images.gz").string() + " has 30 rows but " +
                                        (dir_ / "labels.gz").string() + " has 29"));
  EXPECT_FALSE(fs::exists(dir_ / "registry"));
}

TEST_F(IdxImportPlugin, LabelsMustBeRankOneBytes) {
  write_inputs(4, 4);
  write_bytes(dir_ / "wide.idx", idx_file(0x08, {4, 2}, Bytes(8, 1)));
  FakeContext ctx = context("images.gz", "wide.idx");
  EXPECT_THAT(run_error(ctx), HasSubstr("wide.idx: labels must be a rank-1 u8 IDX array, got "
                                        "shape [4, 2] of u8"));
  EXPECT_FALSE(fs::exists(dir_ / "registry"));
}

}  // namespace
}  // namespace kiln::data
