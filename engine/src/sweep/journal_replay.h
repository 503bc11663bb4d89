// Private to the journal: the text forms Optuna's journal uses (Python's JSON,
// distribution_to_json, ISO datetimes) and the replay of its ops into Study values,
// rule for rule as optuna/storages/journal/_storage.py's JournalStorageReplayResult.
#pragma once

#include <kiln/sweep/study.h>

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::sweep {

namespace journal {

// Optuna's JournalOperation codes.
enum Op : int {
  kCreateStudy = 0,
  kDeleteStudy = 1,
  kSetStudyUserAttr = 2,
  kSetStudySystemAttr = 3,
  kCreateTrial = 4,
  kSetTrialParam = 5,
  kSetTrialStateValues = 6,
  kSetTrialIntermediateValue = 7,
  kSetTrialUserAttr = 8,
  kSetTrialSystemAttr = 9,
  kDiscardTrials = 10,  // written only by Rustuna; Optuna skips it
};

// A line Optuna's replay would fail on; the journal adds the file and line number.
class LineError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// JSON as Python's json module reads and writes it, NaN, Infinity and -Infinity
// included (Optuna writes a NaN intermediate value or attribute that way).
nlohmann::json parse_python_json(std::string_view text);  // throws LineError
std::string dump_python_json(const nlohmann::json& value);
std::string dump_python_json(const nlohmann::ordered_json& value);

// Optuna's distribution_to_json text, with json.dumps' default ", " and ": ".
std::string distribution_to_optuna_text(const Distribution& distribution);
struct ParsedDistribution {
  Distribution distribution;
  std::string class_name;  // Optuna's class, deprecated ones (UniformDistribution) included
};
ParsedDistribution distribution_from_optuna_text(const std::string& text);  // throws LineError
const char* optuna_class_name(const Distribution& distribution) noexcept;
// Why Optuna's constructor would refuse the distribution, or nullopt.
std::optional<std::string> distribution_problem(const Distribution& distribution);
// Optuna's _contains: the internal value lies in the distribution.
bool contains(const Distribution& distribution, double internal) noexcept;

// "2026-12-05T10:09:55.123456+00:00", what Optuna writes.
std::string utc_now_iso();
// An ISO 8601 time as Python's fromisoformat reads it (no offset: local time),
// converted to UTC without an offset: "2026-12-05T10:09:55.123456".
std::string utc_datetime(std::string_view iso);  // throws LineError

struct StudyRecord {
  int id = 0;  // Optuna's study_id
  Study study;
  std::vector<int> directions;  // as written; kiln reads single-objective studies
  bool single_valued = true;    // no trial holds several objective values
  std::vector<int> trial_ids;   // trial number -> Optuna's trial_id
  // The first trial (by number) holding each parameter: Optuna checks a new
  // set_trial_param's distribution against that trial's.
  std::map<std::string, int> first_with_param;
  // Distributions of a deprecated class, by (trial number, parameter): Optuna
  // compares classes, and UniformDistribution is not FloatDistribution.
  std::map<std::pair<int, std::string>, std::string> legacy_classes;
};

}  // namespace journal

class JournalReplay {
 public:
  // Applies one op as Optuna does. Returns nullopt when applied, or why Optuna
  // ignores it (nothing changed then). Throws journal::LineError where Optuna's
  // replay raises.
  std::optional<std::string> apply(const nlohmann::json& op);

  const journal::StudyRecord* find(std::string_view name) const;
  const journal::StudyRecord& study(int id) const { return studies_.at(id); }
  std::vector<std::string> names() const;

  std::uint64_t offset = 0;  // bytes of the file applied
  std::uint64_t lines = 0;   // lines of the file applied

 private:
  std::optional<std::string> create_study(const nlohmann::json& op);
  std::optional<std::string> delete_study(const nlohmann::json& op);
  std::optional<std::string> set_study_attr(const nlohmann::json& op, const char* field);
  std::optional<std::string> create_trial(const nlohmann::json& op);
  std::optional<std::string> set_param(const nlohmann::json& op);
  std::optional<std::string> set_state_values(const nlohmann::json& op);
  std::optional<std::string> set_intermediate(const nlohmann::json& op);
  std::optional<std::string> set_trial_attr(const nlohmann::json& op, const char* field);

  // The trial an op names if Optuna would update it; else why not.
  struct Target {
    journal::StudyRecord* record = nullptr;
    Trial* trial = nullptr;
    std::string ignored_because;
  };
  Target updatable(const nlohmann::json& op);

  std::map<int, journal::StudyRecord> studies_;  // live studies by study_id
  int next_study_id_ = 0;
  std::vector<std::pair<int, int>> trials_;  // trial_id -> (study_id, number)
};

}  // namespace kiln::sweep
