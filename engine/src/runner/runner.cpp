#include "interrupt.h"
#include "run_record.h"
#include "stage_context.h"
#include "step_cache.h"

#include <kiln/dist/process_group.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/report/report.h>
#include <kiln/runner.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

namespace kiln {
namespace fs = std::filesystem;

const char* to_string(StageStatus status) noexcept {
  switch (status) {
    case StageStatus::Cached:
      return "cached";
    case StageStatus::Ran:
      return "ran";
    case StageStatus::WillRun:
      return "will run";
    case StageStatus::Waiting:
      return "waiting";
  }
  return "unknown";
}

namespace {

using Outputs = std::map<std::string, std::vector<Artifact>>;

std::vector<Artifact> gather_inputs(const PipelineStage& stage, const Outputs& outputs) {
  std::vector<Artifact> inputs;
  for (const auto& need : stage.needs) {
    const auto& produced = outputs.at(need);
    inputs.insert(inputs.end(), produced.begin(), produced.end());
  }
  return inputs;
}

StageReport report_for(const PipelineStage& stage) {
  StageReport report;
  report.stage = stage.name;
  report.type = stage.type->name;
  report.needs = stage.needs;
  return report;
}

std::string short_key(const std::string& key) { return key.substr(0, 12); }

// True when `root` holds nothing but what a failed run itself created there
// (empty directories and lock files): then removing it loses nothing.
bool only_scaffolding(const fs::path& root) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return false;
    if (it->is_directory()) continue;
    if (it->path().extension() != ".lock") return false;
  }
  return !ec;
}

class Execution {
 public:
  Execution(const Pipeline& pipeline, const RunOptions& options)
      : pipeline_(pipeline),
        options_(options),
        root_(fs::absolute(options.registry_root).lexically_normal()),
        cache_(root_),
        record_(pipeline, root_, options.placement.rank == 0, options.hooks) {}

  RunResult run() {
    const bool registry_existed = fs::exists(root_);
    RunResult result;
    std::string current;  // the stage under way, "" between stages
    try {
      for (const auto& stage : pipeline_.stages) {
        if (interrupt_requested())
          throw InterruptedError(fmt::format("interrupted before stage '{}'", stage.name));
        current = stage.name;
        result.stages.push_back(run_stage(stage));
        current.clear();
      }
      if (follower() || rank0_of_many()) options_.group->shutdown();
    } catch (const Error& error) {
      if (!current.empty() && options_.hooks.on_stage_failed)
        options_.hooks.on_stage_failed(current);
      if (options_.group != nullptr) options_.group->announce_failure(error.what(), error.kind());
      record_.end(error.kind() == ErrorKind::Interrupted ? registry::RunStatus::Killed
                                                         : registry::RunStatus::Failed);
      write_report();
      std::error_code ec;
      if (!registry_existed && !follower() && !record_.opened() && only_scaffolding(root_))
        fs::remove_all(root_, ec);
      throw;
    }
    for (const auto& report : result.stages) tag_stage(report);
    record_.end(registry::RunStatus::Finished);
    write_report();
    result.run_id = record_.run_id();
    result.experiment_id = record_.experiment_id();
    return result;
  }

 private:
  // The run's HTML report, as an artifact; a report that cannot be written is a
  // warning, never the run's failure.
  void write_report() {
    if (!record_.opened()) return;
    try {
      report::write_run_report(root_, record_.run_id(),
                               record_.get().artifact_dir() / "report.html");
    } catch (const Error& error) {
      log::warn("run report not written: {}", error.what());
    }
  }

  bool forced(const std::string& stage) const {
    return std::find(options_.force.begin(), options_.force.end(), stage) != options_.force.end();
  }

  StageReport run_stage(const PipelineStage& stage) {
    StageReport report = report_for(stage);
    const std::vector<Artifact> inputs = gather_inputs(stage, outputs_);
    report.cache_key = step_cache_key(stage, inputs);
    if (follower()) {
      follow(stage, inputs, report);
      outputs_[stage.name] = report.outputs;
      return report;
    }
    if (!forced(stage.name)) {
      if (auto cached = cache_.lookup(report.cache_key, stage.name)) {
        log::info("stage {} ({}): cached, key {}", stage.name, stage.type->name,
                  short_key(report.cache_key));
        report.status = StageStatus::Cached;
        report.outputs = std::move(*cached);
        report.run_id = cache_.producer_run(report.cache_key);
        outputs_[stage.name] = report.outputs;
        announce(stage, "start", "cached");
        announce(stage, "done", "1");
        return report;
      }
    }
    execute(stage, inputs, report);
    outputs_[stage.name] = report.outputs;
    announce(stage, "done", "1");
    return report;
  }

  // Data-parallel jobs (world size above 1): rank 0 tells the others, through the
  // rendezvous store, whether it runs each stage ("run", "cached") and when the
  // stage's outputs are committed ("done").
  bool follower() const { return options_.group != nullptr && options_.placement.rank != 0; }
  bool rank0_of_many() const { return options_.group != nullptr && options_.placement.rank == 0; }
  void announce(const PipelineStage& stage, const char* key, const char* value) {
    if (rank0_of_many())
      options_.group->store().set(fmt::format("runner.{}.{}", stage.name, key), value);
  }
  std::string await(const PipelineStage& stage, const char* key, const char* what) {
    std::string value;
    options_.group->wait_for(
        [&] {
          auto found =
              options_.group->store().try_get(fmt::format("runner.{}.{}", stage.name, key));
          if (found) value = *found;
          return found.has_value();
        },
        fmt::format("rank 0 to {} stage '{}'", what, stage.name));
    return value;
  }

  // A rank other than 0: joins the all_ranks stages rank 0 runs, in a private work
  // directory whose files are dropped (rank 0 commits the stage), and takes every
  // stage's outputs from the step cache once rank 0 has committed them.
  void follow(const PipelineStage& stage, const std::vector<Artifact>& inputs,
              StageReport& report) {
    const std::string decision = await(stage, "start", "start");
    const std::string& key = report.cache_key;
    if (decision == "run" && stage.type->all_ranks) {
      log::info("stage {} ({}): running as rank {}, key {}", stage.name, stage.type->name,
                options_.placement.rank, short_key(key));
      const fs::path work = make_unique_directory(
          root_ / "stages" / ".work", fmt::format("{}.rank{}-", key, options_.placement.rank));
      try {
        RunnerStageContext context(stage, inputs, work, cache_.resume_dir(key), root_, record_,
                                   options_.placement, options_.group,
                                   options_.hooks.stop_requested);
        run_guarded(stage, context);
      } catch (...) {
        std::error_code ec;
        fs::remove_all(work, ec);
        throw;
      }
      std::error_code ec;
      fs::remove_all(work, ec);
    }
    await(stage, "done", "commit");
    auto committed = cache_.lookup(key, stage.name);
    if (!committed)
      throw StageError(
          fmt::format("rank {}: stage '{}' is not in the step cache under key {} "
                      "although rank 0 committed it (does every rank see the same "
                      "registry?)",
                      options_.placement.rank, stage.name, short_key(key)));
    report.status = decision == "run" ? StageStatus::Ran : StageStatus::Cached;
    report.outputs = std::move(*committed);
  }

  void execute(const PipelineStage& stage, const std::vector<Artifact>& inputs,
               StageReport& report) {
    const std::string& key = report.cache_key;
    FileLock lock(cache_.lock_file(key));
    // Another process may have committed the key while this one waited for the lock.
    if (!forced(stage.name)) {
      if (auto cached = cache_.lookup(key, stage.name)) {
        log::info("stage {} ({}): committed meanwhile by another process, key {}", stage.name,
                  stage.type->name, short_key(key));
        report.status = StageStatus::Cached;
        report.outputs = std::move(*cached);
        report.run_id = cache_.producer_run(key);
        announce(stage, "start", "cached");
        return;
      }
    }
    announce(stage, "start", "run");
    const fs::path work = cache_.start_attempt(key);
    const fs::path resume = cache_.resume_dir(key);
    fs::create_directories(resume);
    log::info("stage {} ({}): running, key {}", stage.name, stage.type->name, short_key(key));
    const auto start = std::chrono::steady_clock::now();
    std::vector<Artifact> emitted;
    try {
      RunnerStageContext context(stage, inputs, work, resume, root_, record_, options_.placement,
                                 stage.type->all_ranks ? options_.group : nullptr,
                                 options_.hooks.stop_requested);
      run_guarded(stage, context);
      emitted = context.take_outputs();
    } catch (...) {
      std::error_code ec;
      fs::remove_all(work, ec);
      fs::remove(resume, ec);  // only when empty: a checkpoint stays for the next attempt
      throw;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    StepCache::Attempt attempt{stage,
                               key,
                               work,
                               inputs,
                               std::move(emitted),
                               record_.run_id(),
                               seconds,
                               forced(stage.name)};
    report.outputs = cache_.commit(attempt);
    std::error_code ec;
    fs::remove_all(resume, ec);
    report.status = StageStatus::Ran;
    report.seconds = seconds;
    report.run_id = record_.run_id();
    log::info("stage {} ({}): done in {:.1f} s", stage.name, stage.type->name, seconds);
  }

  // Runs the stage, giving every error the stage as context.
  static void run_guarded(const PipelineStage& stage, RunnerStageContext& context) {
    const std::string prefix = fmt::format("stage '{}' ({}): ", stage.name, stage.type->name);
    try {
      stage.type->run(context);
      context.progress().finish();
    } catch (const Error& error) {
      context.progress().finish();
      rethrow_with_context(error, prefix);
    } catch (const std::exception& error) {
      context.progress().finish();
      throw StageError(prefix + error.what());
    }
  }

  void tag_stage(const StageReport& report) {
    record_.set_tag("kiln.stage." + report.stage,
                    fmt::format("{} {}", to_string(report.status), report.cache_key));
    for (const auto& output : report.outputs)
      if (output.kind == "dataset")
        record_.set_tag(fmt::format("kiln.dataset.{}", report.stage), output.content_id);
  }

  const Pipeline& pipeline_;
  const RunOptions& options_;
  fs::path root_;
  StepCache cache_;
  RunRecord record_;
  Outputs outputs_;
};

void check_force(const Pipeline& pipeline, const std::vector<std::string>& force) {
  std::vector<std::string> names;
  for (const auto& stage : pipeline.stages) names.push_back(stage.name);
  for (const auto& name : force)
    if (pipeline.find(name) == nullptr) {
      const std::string nearest = nearest_name(name, names);
      throw ConfigError(fmt::format("--force {}: no such stage in {}{}", name,
                                    pipeline.file.string(),
                                    nearest.empty() ? "" : " (did you mean '" + nearest + "'?)"));
    }
}

}  // namespace

Runner::Runner(const Pipeline& pipeline, RunOptions options)
    : pipeline_(pipeline), options_(std::move(options)) {
  check_force(pipeline_, options_.force);
}

std::vector<StageReport> Runner::plan() const {
  const StepCache cache(options_.registry_root);
  Outputs outputs;
  std::set<std::string> pending;
  std::vector<StageReport> reports;
  for (const auto& stage : pipeline_.stages) {
    StageReport report = report_for(stage);
    const auto upstream =
        std::find_if(stage.needs.begin(), stage.needs.end(),
                     [&](const std::string& need) { return pending.count(need); });
    if (upstream != stage.needs.end()) {
      report.status = StageStatus::Waiting;
      report.reason = fmt::format("runs after '{}'", *upstream);
    } else {
      report.cache_key = step_cache_key(stage, gather_inputs(stage, outputs));
      const bool force = std::find(options_.force.begin(), options_.force.end(), stage.name) !=
                         options_.force.end();
      auto cached = force ? std::nullopt : cache.lookup(report.cache_key, stage.name);
      if (cached) {
        report.status = StageStatus::Cached;
        report.outputs = *cached;
        outputs[stage.name] = std::move(*cached);
      } else {
        report.status = StageStatus::WillRun;
        report.reason = force ? "forced" : "not in the step cache";
      }
    }
    if (report.status != StageStatus::Cached) pending.insert(stage.name);
    reports.push_back(std::move(report));
  }
  return reports;
}

RunResult Runner::run() {
  InterruptGuard guard;
  Execution execution(pipeline_, options_);
  return execution.run();
}

}  // namespace kiln
