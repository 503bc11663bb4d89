// A sweep's state as an append-only journal in Optuna's JournalStorage file format
// (optuna/storages/journal/_storage.py, _file.py), so that
// `optuna.load_study(storage=JournalStorage(JournalFileBackend(path)))` and
// optuna-dashboard read a kiln sweep as it is, and an Optuna process may append to
// the same file while kiln does. docs/formats.md ("Sweep journal") lists the ops.
//
// Writers take Optuna's default lock (JournalFileSymlinkLock: `<file>.lock` made
// with symlink(2)), append one JSON line per op with a single write(2) and fsync.
// Readers take no lock. The replay applies Optuna's rules, so kiln and Optuna agree
// on every trial's state: an op on a finished trial, a second claim of a waiting
// trial or a parameter whose distribution conflicts with an earlier trial's is
// ignored by both; a line neither can read is a DataError naming file and line.
#pragma once

#include <kiln/sweep/study.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::sweep {

// A trial to create: Optuna's create-trial op with a template (what enqueue_trial
// and add_trial write). Parameters are internal representations (study.h).
struct TrialDraft {
  std::map<std::string, double> params;
  std::map<std::string, Distribution> distributions;  // exactly one per parameter
  TrialState state = TrialState::Running;             // Running or Waiting
  nlohmann::json user_attrs = nlohmann::json::object();
  nlohmann::json system_attrs = nlohmann::json::object();
};

struct JournalOptions {
  // A lock whose journal has not changed for this long belongs to a dead writer
  // and is broken; Optuna's JournalFileSymlinkLock default (grace_period=30).
  std::chrono::milliseconds lock_grace_period{30'000};
};

// Optuna's distribution_to_json as a JSON value: {"name": "FloatDistribution",
// "attributes": {"step": null, "low": 0.0001, "high": 0.1, "log": true}}.
nlohmann::json optuna_distribution_json(const Distribution& distribution);

class Journal;
class JournalReplay;

// Ops of one study, appended under the journal's lock in one write when the
// callback of Journal::with_lock returns. Each op is checked against the study as
// it stands after the ops before it, so an op Optuna would ignore is refused here
// with a DataError (a finished trial, an unknown trial number, a conflicting
// distribution) and nothing of the transaction is written.
class JournalTransaction {
 public:
  // The study with every op appended so far, this transaction's included.
  const Study& study() const;

  // Returns the new trial's number. Refuses (InternalError) a draft Optuna could not
  // read back: a parameter without its distribution or outside it, an invalid
  // distribution, a state other than Running or Waiting.
  int create_trial(const TrialDraft& draft);
  // Optuna's set_trial_param (what Trial.suggest_* writes).
  void set_param(int trial, const std::string& name, double internal,
                 const Distribution& distribution);
  // Running claims a Waiting trial: false when another worker already runs it.
  // Complete needs a finite value; Pruned may carry the last intermediate value
  // (Optuna's tell does so), Fail none.
  bool set_state(int trial, TrialState state, std::optional<double> value = std::nullopt);
  void set_intermediate(int trial, std::int64_t step, double value);
  void set_user_attr(int trial, const std::string& key, const nlohmann::json& value);
  void set_system_attr(int trial, const std::string& key, const nlohmann::json& value);
  void set_study_user_attr(const std::string& key, const nlohmann::json& value);
  void set_study_system_attr(const std::string& key, const nlohmann::json& value);

 private:
  friend class Journal;
  JournalTransaction(Journal& journal, int study_id);
  int trial_id(int number) const;
  // A trial's attribute, or the study's (trial_number unused).
  void set_attr(int op_code, int trial_number, const std::string& key, const nlohmann::json& value);
  // Applies `op` to the replay (after it went through the text a reader will see)
  // and queues its line; throws with `what` when the replay would ignore it.
  void stage(int op_code, const nlohmann::json& fields, std::string_view what);

  Journal& journal_;
  int study_id_;
  std::string lines_;
  std::size_t line_count_ = 0;
};

class Journal {
 public:
  // `worker_id` goes into every op (Optuna writes "<uuid4>-<thread id>"); it needs
  // only be unique per writer. The file (and its directory) is created if missing.
  Journal(std::filesystem::path file, std::string worker_id, JournalOptions options = {});
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::filesystem::path& file() const noexcept { return file_; }

  // The study as the journal holds it now (reading only what was appended since the
  // last call). Times in Trial are UTC. DataError when there is no such study, or
  // it has several objectives (kiln sweeps optimise one).
  Study load(std::string_view study_name);
  std::vector<std::string> study_names();

  // Creates the study; false (nothing written) when it exists already with the same
  // direction, a ConfigError when with another.
  bool create_study(const std::string& name, Direction direction);

  // Runs `body` under the lock on the study as it stands, then appends the ops it
  // made. A sampler deciding here sees every trial created before its own.
  void with_lock(std::string_view study_name, const std::function<void(JournalTransaction&)>& body);

  // One-op shorthands for with_lock; see JournalTransaction.
  int create_trial(std::string_view study_name, const TrialDraft& draft);
  int create_trial_with(std::string_view study_name,
                        const std::function<TrialDraft(const Study&)>& decide);
  void set_param(std::string_view study_name, int trial, const std::string& name, double internal,
                 const Distribution& distribution);
  bool set_state(std::string_view study_name, int trial, TrialState state,
                 std::optional<double> value = std::nullopt);
  void set_intermediate(std::string_view study_name, int trial, std::int64_t step, double value);
  void set_user_attr(std::string_view study_name, int trial, const std::string& key,
                     const nlohmann::json& value);
  void set_system_attr(std::string_view study_name, int trial, const std::string& key,
                       const nlohmann::json& value);

 private:
  friend class JournalTransaction;
  void sync();            // applies the complete lines appended since the last sync
  void drop_torn_tail();  // under the lock: cuts a last line without '\n'
  void append(const std::string& lines);
  [[noreturn]] void fail_at_line(std::uint64_t line, const std::string& what) const;

  std::filesystem::path file_;
  std::string worker_id_;
  JournalOptions options_;
  std::mutex mutex_;  // one thread at a time reads or writes through this object
  std::unique_ptr<JournalReplay> replay_;
};

}  // namespace kiln::sweep
