#include "run_record.h"

#include <kiln/clock.h>
#include <kiln/device.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/hash.h>
#include <kiln/log.h>
#include <kiln/machine.h>
#include <kiln/registry/registry_root.h>
#include <kiln/version.h>

#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>

namespace kiln {
namespace fs = std::filesystem;

namespace {

// A rank other than 0 of a data-parallel run keeps its metrics to itself: rank 0
// alone writes the registry.
class DiscardingRunLog final : public RunLog {
 public:
  const std::string& run_id() const override { return empty_; }
  const std::string& experiment_id() const override { return empty_; }
  void log_metric(std::string_view, double, std::int64_t) override {}
  void log_param(std::string_view, std::string_view) override {}
  void set_tag(std::string_view, std::string_view) override {}
  fs::path artifact_dir() override {
    if (scratch_.empty()) scratch_ = make_unique_directory(fs::temp_directory_path(), "kiln-rank-");
    return scratch_;
  }

 private:
  std::string empty_;
  fs::path scratch_;
};

std::string host_name() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return "unknown";
  return name.data();
}

std::string user_name() {
  for (const char* variable : {"USER", "LOGNAME"})
    if (const char* value = std::getenv(variable)) return value;
  return std::to_string(::getuid());
}

// The commit of the git repository holding `dir`, or "" if it is not in one.
std::string git_commit(const fs::path& dir) {
  const std::string command = fmt::format("git -C '{}' rev-parse HEAD 2>/dev/null", dir.string());
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return "";
  std::array<char, 128> buffer{};
  std::string output;
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
  const int status = ::pclose(pipe);
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  return status == 0 && output.size() == 40 ? output : "";
}

std::string cuda_version_text(int version) {
  return fmt::format("{}.{}", version / 1000, version % 1000 / 10);
}

// What the run executed on: GPU model(s) and count, CUDA runtime and driver where
// present. cuDNN and NCCL versions are not probed yet (no API in <kiln/device.h>).
void add_device_tags(std::map<std::string, std::string>& tags) {
  const DeviceReport report = probe_devices();
  tags["kiln.gpu.count"] = std::to_string(report.devices.size());
  std::set<std::string> models;
  for (const CudaDevice& device : report.devices) models.insert(device.name);
  if (!models.empty()) tags["kiln.gpu.model"] = fmt::format("{}", fmt::join(models, ", "));
  if (report.devices.empty() && !report.why_none.empty()) tags["kiln.gpu.none"] = report.why_none;
  if (report.cuda_built) tags["kiln.cuda.runtime"] = cuda_version_text(report.runtime_version);
  if (report.driver_version > 0)
    tags["kiln.cuda.driver"] = cuda_version_text(report.driver_version);
}

// A requeued Slurm job (SLURM_RESTART_COUNT above 0) goes on in the run that its
// first attempt opened: the one of this experiment tagged with the same job id that
// did not finish (not reopened yet). Nullptr for anything else.
std::unique_ptr<registry::MlflowRun> requeued_run(const registry::MlflowStore& store,
                                                  const std::string& experiment) {
  const char* job = std::getenv("SLURM_JOB_ID");
  const char* restart = std::getenv("SLURM_RESTART_COUNT");
  if (job == nullptr || restart == nullptr || std::string_view(restart) == "0") return nullptr;
  for (const registry::RunInfo& info : store.list_runs(experiment)) {
    if (info.status == registry::RunStatus::Finished || !info.parent_run_id.empty()) continue;
    std::unique_ptr<registry::MlflowRun> run = store.open_run(info.run_id);
    const auto tags = run->tags();
    const auto tag = tags.find("kiln.slurm.SLURM_JOB_ID");
    if (tag == tags.end() || tag->second != job) continue;
    return run;
  }
  return nullptr;
}

// The sbatch scripts of the kiln submit job this process runs in (KILN_JOB_DIR),
// kept with the run as artifacts slurm/<role>.sbatch.
void copy_job_scripts(const fs::path& artifact_dir) {
  const char* dir = std::getenv("KILN_JOB_DIR");
  if (dir == nullptr || *dir == '\0') return;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().extension() == ".sbatch") {
      fs::create_directories(artifact_dir / "slurm", ec);
      fs::copy_file(entry.path(), artifact_dir / "slurm" / entry.path().filename(),
                    fs::copy_options::overwrite_existing, ec);
    }
}

const char* level_name(log::Level level) {
  switch (level) {
    case log::Level::Debug:
      return "debug";
    case log::Level::Info:
      return "info";
    case log::Level::Warn:
      return "warning";
    case log::Level::Error:
      return "error";
  }
  return "info";
}

}  // namespace

// Copies the log lines of this execution into the run's artifacts/kiln.log. Lines
// logged before the run opened (the imports' progress, say) wait in memory, up to
// a bound, and are written first when it opens.
class RunRecord::LogCopy {
 public:
  LogCopy() {
    handle_ = log::add_listener([this](log::Level level, std::string_view line) {
      take(fmt::format("{} {} {}", iso8601_utc(), level_name(level), line));
    });
  }
  ~LogCopy() { log::remove_listener(handle_); }
  LogCopy(const LogCopy&) = delete;
  LogCopy& operator=(const LogCopy&) = delete;

  void attach(const fs::path& file) {
    std::lock_guard lock(mutex_);
    file_ = file;
    if (!pending_.empty()) append_line(file_, pending_);
    pending_.clear();
  }

 private:
  static constexpr std::size_t kMaxPending = 1 << 20;

  void take(const std::string& line) {
    std::lock_guard lock(mutex_);
    if (!file_.empty())
      append_line(file_, line);
    else if (pending_.size() + line.size() < kMaxPending)
      pending_ += line + "\n";
  }

  int handle_ = 0;
  std::mutex mutex_;
  fs::path file_;
  std::string pending_;
};

// Passes every call on, and shows each metric to the hooks once it is written.
class RunRecord::Observed final : public RunLog {
 public:
  Observed(RunLog& inner, const RunHooks& hooks) : inner_(inner), hooks_(hooks) {}
  const std::string& run_id() const override { return inner_.run_id(); }
  const std::string& experiment_id() const override { return inner_.experiment_id(); }
  void log_metric(std::string_view key, double value, std::int64_t step) override {
    inner_.log_metric(key, value, step);
    hooks_.on_metric(key, value, step);
  }
  void log_param(std::string_view key, std::string_view value) override {
    inner_.log_param(key, value);
  }
  void set_tag(std::string_view key, std::string_view value) override {
    inner_.set_tag(key, value);
  }
  fs::path artifact_dir() override { return inner_.artifact_dir(); }

 private:
  RunLog& inner_;
  const RunHooks& hooks_;
};

RunRecord::RunRecord(const Pipeline& pipeline, const fs::path& registry_root, bool writer,
                     const RunHooks& hooks)
    : pipeline_(pipeline), hooks_(hooks), store_(registry_root), writer_(writer) {
  registry::check_registry_root(registry_root, registry::RootAccess::Write);
  if (writer_) log_copy_ = std::make_unique<LogCopy>();
}

RunRecord::~RunRecord() = default;

RunLog& RunRecord::get() {
  if (!writer_) {
    if (!null_log_) null_log_ = std::make_unique<DiscardingRunLog>();
    return *null_log_;
  }
  if (run_) return observed_ ? static_cast<RunLog&>(*observed_) : *tensorboard_;
  const std::string experiment = store_.ensure_experiment(pipeline_.name);
  const fs::path pipeline_file = fs::absolute(pipeline_.file).lexically_normal();
  std::map<std::string, std::string> tags = {
      {"mlflow.user", user_name()},
      {"mlflow.source.name", pipeline_file.string()},
      {"mlflow.source.type", "LOCAL"},
      {"kiln.version", KILN_VERSION},
      {"kiln.pipeline", pipeline_file.string()},
      {"kiln.host", host_name()},
  };
  if (const std::string build = engine_build(); !build.empty()) tags["kiln.engine"] = build;
  if (const std::string cpu = cpu_model(); !cpu.empty()) tags["kiln.cpu"] = cpu;
  if (const std::string commit = git_commit(pipeline_file.parent_path()); !commit.empty())
    tags["mlflow.source.git.commit"] = commit;
  for (const auto& stage : pipeline_.stages)
    tags["kiln.plugin." + stage.plugin->name] =
        fmt::format("{} sha256:{}", stage.plugin->version, stage.plugin->sha256);
  for (const char* variable : {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"})
    if (const char* value = std::getenv(variable))
      tags[fmt::format("kiln.slurm.{}", variable)] = value;
  if (std::getenv("SLURM_JOB_ID") != nullptr) {  // Slurm sets the count from the first requeue
    const char* restarts = std::getenv("SLURM_RESTART_COUNT");
    tags["kiln.slurm.restart_count"] = restarts != nullptr ? restarts : "0";
  }
  add_device_tags(tags);
  for (const auto& [key, value] : hooks_.tags) tags[key] = value;

  if (hooks_.run_name.empty()) run_ = requeued_run(store_, experiment);
  if (run_) {
    // The lease first: between the two, the run is RUNNING with its lease held.
    lease_ = std::make_unique<ProcessLease>(store_.run_lease_file(run_->run_id()));
    run_->reopen();
    log::info("Slurm job {} was requeued: run {} goes on", tags["kiln.slurm.SLURM_JOB_ID"],
              run_->run_id());
    for (const auto& [key, value] : tags)
      if (key.rfind("kiln.slurm.", 0) == 0) run_->set_tag(key, value);
  } else {
    const std::string run_name = hooks_.run_name.empty()
                                     ? fmt::format("{}-{}", pipeline_.name, iso8601_utc())
                                     : hooks_.run_name;
    run_ = store_.start_run(experiment, run_name, tags);
    // Until the lease file appears (already held), the run counts as no one's.
    lease_ = std::make_unique<ProcessLease>(store_.run_lease_file(run_->run_id()));
    for (const auto& [key, value] : pipeline_.flat_params()) run_->log_param(key, value);
  }
  write_file_atomic(run_->artifact_dir() / "pipeline.yaml", pipeline_.resolved_yaml);
  copy_job_scripts(run_->artifact_dir());
  if (log_copy_) log_copy_->attach(run_->artifact_dir() / "kiln.log");
  log::info("run {} in experiment '{}' ({})", run_->run_id(), pipeline_.name, experiment);
  tensorboard_ = std::make_unique<tensorboard::TensorBoardRunLog>(*run_);
  if (hooks_.on_open) hooks_.on_open(run_->run_id());
  if (!hooks_.on_metric) return *tensorboard_;
  observed_ = std::make_unique<Observed>(*tensorboard_, hooks_);
  return *observed_;
}

std::string RunRecord::run_id() const { return run_ ? run_->run_id() : std::string(); }
std::string RunRecord::experiment_id() const {
  return run_ ? run_->experiment_id() : std::string();
}

void RunRecord::set_tag(const std::string& key, const std::string& value) {
  if (run_) run_->set_tag(key, value);
}

void RunRecord::end(registry::RunStatus status) {
  if (!run_) return;
  log::info("run {} ended: {}", run_->run_id(), registry::to_string(status));
  log_copy_.reset();  // the log is complete before the status says the run ended
  tensorboard_->close();
  run_->end(status);
  lease_.reset();
}

}  // namespace kiln
