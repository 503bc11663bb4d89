// A StageContext for running a stage plugin in-process: fixed params and inputs,
// outputs and metrics recorded, the registry and work dir in a scratch directory;
// and a loader for the plugins the engine would dlopen.
#pragma once

#include <kiln/plugin.h>
#include <kiln/stage.h>

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kiln::data::testing {

class RecordingRunLog final : public RunLog {
 public:
  explicit RecordingRunLog(std::filesystem::path artifacts) : artifacts_(std::move(artifacts)) {}
  const std::string& run_id() const override { return id_; }
  const std::string& experiment_id() const override { return id_; }
  void log_metric(std::string_view key, double value, std::int64_t) override {
    metrics[std::string(key)] = value;
  }
  void log_param(std::string_view, std::string_view) override {}
  void set_tag(std::string_view, std::string_view) override {}
  std::filesystem::path artifact_dir() override {
    std::filesystem::create_directories(artifacts_);
    return artifacts_;
  }
  std::map<std::string, double> metrics;

 private:
  std::string id_ = "0";
  std::filesystem::path artifacts_;
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
  FakeContext(std::filesystem::path root, std::string type, nlohmann::json values,
              std::vector<Artifact> inputs = {})
      : run_log_(root / "artifacts"),
        type_(std::move(type)),
        params_(name_, std::move(values), {}),
        inputs_(std::move(inputs)),
        registry_(root / "registry"),
        work_(root / "work") {}
  const std::string& name() const override { return name_; }
  const std::string& type() const override { return type_; }
  const Params& params() const override { return params_; }
  const std::vector<Artifact>& inputs() const override { return inputs_; }
  const std::filesystem::path& work_dir() const override {
    std::filesystem::create_directories(work_);
    return work_;
  }
  const std::filesystem::path& resume_dir() const override { return work_; }
  void emit(Artifact output) override { emitted.push_back(std::move(output)); }
  const std::filesystem::path& registry_root() const override { return registry_; }
  RunLog& run() override { return run_log_; }
  Progress& progress() override { return progress_; }
  bool stop_requested() const override { return false; }
  const Placement& placement() const override { return placement_; }

  std::vector<Artifact> emitted;
  RecordingProgress progress_;
  RecordingRunLog run_log_;

 private:
  std::string name_ = "check";
  std::string type_;
  Params params_;
  std::vector<Artifact> inputs_;
  std::filesystem::path registry_, work_;
  Placement placement_;
};

class CollectingRegistrar final : public StageRegistrar {
 public:
  void add(StageType type) override { types.push_back(std::move(type)); }
  std::vector<StageType> types;
};

// The stage types of a built plugin (kept loaded for the process: the types'
// std::functions point into it); empty, with a test failure, if it cannot load.
inline std::vector<StageType> load_plugin_types(const std::filesystem::path& file,
                                                const KilnPluginDescriptor** descriptor = nullptr) {
  void* module = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (module == nullptr) {
    ADD_FAILURE() << dlerror();
    return {};
  }
  auto entry = reinterpret_cast<KilnPluginEntry>(dlsym(module, KILN_PLUGIN_ENTRY_SYMBOL));
  if (entry == nullptr) {
    ADD_FAILURE() << dlerror();
    return {};
  }
  CollectingRegistrar registrar;
  entry()->register_stages(registrar);
  if (descriptor != nullptr) *descriptor = entry();
  return std::move(registrar.types);
}

// `values` with the schema's defaults filled in, as the pipeline resolver does.
inline nlohmann::json with_defaults(const StageType& type, nlohmann::json values) {
  for (const ParamSpec& spec : type.params.specs())
    if (!values.contains(spec.name) && spec.default_value) values[spec.name] = *spec.default_value;
  return values;
}

inline const StageType& find_type(const std::vector<StageType>& types, const std::string& name) {
  for (const StageType& type : types)
    if (type.name == name) return type;
  throw std::runtime_error("no stage type " + name);
}

}  // namespace kiln::data::testing
