// The ops a writer makes under the journal's lock: each is built as Optuna's
// JournalStorage would write it, put through the text a reader will see, checked by
// applying it to the replay, and queued; Journal::with_lock writes them at once.
#include <kiln/error.h>
#include <kiln/sweep/journal.h>

#include <fmt/format.h>

#include <cmath>

#include "sweep/journal_replay.h"

namespace kiln::sweep {

JournalTransaction::JournalTransaction(Journal& journal, int study_id)
    : journal_(journal), study_id_(study_id) {}

const Study& JournalTransaction::study() const { return journal_.replay_->study(study_id_).study; }

int JournalTransaction::trial_id(int number) const {
  const auto& ids = journal_.replay_->study(study_id_).trial_ids;
  if (number < 0 || number >= static_cast<int>(ids.size()))
    throw DataError(fmt::format("journal {}: study '{}' has no trial {}", journal_.file().string(),
                                study().name, number));
  return ids[static_cast<std::size_t>(number)];
}

void JournalTransaction::stage(int op_code, const nlohmann::json& fields, std::string_view what) {
  // op_code and worker_id first, as Optuna writes them (nlohmann sorts the rest).
  const std::string rest = journal::dump_python_json(fields);
  std::string text = fmt::format(R"({{"op_code":{},"worker_id":{}{}{})", op_code,
                                 journal::dump_python_json(nlohmann::json(journal_.worker_id_)),
                                 rest.size() > 2 ? "," : "", rest.substr(1));
  // Applied as a reader will parse it, so what kiln holds is what the file says.
  std::optional<std::string> ignored;
  try {
    ignored = journal_.replay_->apply(journal::parse_python_json(text));
  } catch (const journal::LineError& error) {  // kiln wrote what no reader can read
    throw InternalError(
        fmt::format("journal: kiln's own op {} does not read back: {}", text, error.what()));
  }
  if (ignored)
    throw DataError(fmt::format("journal {}: study '{}': cannot {}: {} (Optuna would ignore it)",
                                journal_.file().string(), study().name, what, *ignored));
  lines_ += text;
  lines_ += '\n';
  ++line_count_;
}

int JournalTransaction::create_trial(const TrialDraft& draft) {
  const auto refuse = [&](const std::string& why) {
    throw InternalError(fmt::format("journal {}: a trial for study '{}': {}",
                                    journal_.file().string(), study().name, why));
  };
  if (draft.state != TrialState::Running && draft.state != TrialState::Waiting)
    refuse(std::string("a new trial is RUNNING or WAITING, not ") + to_string(draft.state));
  if (!draft.user_attrs.is_object() || !draft.system_attrs.is_object())
    refuse("attributes must be JSON objects");
  nlohmann::json distributions = nlohmann::json::object();
  nlohmann::json params = nlohmann::json::object();
  for (const auto& [name, distribution] : draft.distributions) {
    if (auto problem = journal::distribution_problem(distribution))
      refuse("parameter '" + name + "': " + *problem);
    const auto value = draft.params.find(name);
    if (value == draft.params.end())
      refuse("parameter '" + name + "' has a distribution but no value");
    if (!journal::contains(distribution, value->second))
      refuse(fmt::format("parameter '{}' = {} lies outside its distribution {}", name,
                         value->second, journal::distribution_to_optuna_text(distribution)));
    distributions[name] = journal::distribution_to_optuna_text(distribution);
    params[name] = value->second;
  }
  if (draft.params.size() != draft.distributions.size()) refuse("a parameter has no distribution");
  const int number = static_cast<int>(study().trials.size());
  nlohmann::json op;
  const int code = journal::kCreateTrial;
  op["study_id"] = study_id_;
  // The fields of Optuna's create_new_trial with a template trial (enqueue_trial):
  // a waiting trial has not started; "datetime_complete" is left out, since Optuna
  // parses it whenever the key is present.
  op["datetime_start"] = draft.state == TrialState::Running ? nlohmann::json(journal::utc_now_iso())
                                                            : nlohmann::json();
  op["state"] = static_cast<int>(draft.state);
  op["value"] = nullptr;
  op["values"] = nullptr;
  op["distributions"] = std::move(distributions);
  op["params"] = std::move(params);
  op["user_attrs"] = draft.user_attrs;
  op["system_attrs"] = draft.system_attrs;
  op["intermediate_values"] = nlohmann::json::object();
  stage(code, op, "create a trial");
  return number;
}

void JournalTransaction::set_param(int trial, const std::string& name, double internal,
                                   const Distribution& distribution) {
  if (auto problem = journal::distribution_problem(distribution))
    throw InternalError("journal: parameter '" + name + "': " + *problem);
  if (!journal::contains(distribution, internal))
    throw InternalError(
        fmt::format("journal: parameter '{}' = {} lies outside its distribution", name, internal));
  nlohmann::json op;
  const int code = journal::kSetTrialParam;
  op["trial_id"] = trial_id(trial);
  op["param_name"] = name;
  op["param_value_internal"] = internal;
  op["distribution"] = journal::distribution_to_optuna_text(distribution);
  stage(code, op, fmt::format("set parameter '{}' of trial {}", name, trial));
}

bool JournalTransaction::set_state(int trial, TrialState state, std::optional<double> value) {
  const int id = trial_id(trial);
  const Trial& current = study().trials[static_cast<std::size_t>(trial)];
  // A second claim of a waiting trial loses quietly, as Optuna's does.
  if (state == TrialState::Running && current.state == TrialState::Running) return false;
  if (state == TrialState::Complete && !(value && std::isfinite(*value)))
    throw InternalError(
        fmt::format("journal: trial {} cannot complete without a finite value", trial));
  if ((state == TrialState::Running || state == TrialState::Waiting || state == TrialState::Fail) &&
      value)
    throw InternalError(fmt::format("journal: a {} trial has no value", to_string(state)));
  nlohmann::json op;
  const int code = journal::kSetTrialStateValues;
  op["trial_id"] = id;
  op["state"] = static_cast<int>(state);
  op["values"] = value ? nlohmann::json::array({*value}) : nlohmann::json();
  if (state == TrialState::Running) op["datetime_start"] = journal::utc_now_iso();
  if (state != TrialState::Running && state != TrialState::Waiting)
    op["datetime_complete"] = journal::utc_now_iso();
  stage(code, op, fmt::format("set trial {} {}", trial, to_string(state)));
  return true;
}

void JournalTransaction::set_intermediate(int trial, std::int64_t step, double value) {
  nlohmann::json op;
  const int code = journal::kSetTrialIntermediateValue;
  op["trial_id"] = trial_id(trial);
  op["step"] = step;
  op["intermediate_value"] = value;
  stage(code, op, fmt::format("report step {} of trial {}", step, trial));
}

// The four attribute ops differ only in their code, owner field and attribute kind.
void JournalTransaction::set_attr(int op_code, int trial_number, const std::string& key,
                                  const nlohmann::json& value) {
  const bool trial =
      op_code == journal::kSetTrialUserAttr || op_code == journal::kSetTrialSystemAttr;
  const bool user = op_code == journal::kSetTrialUserAttr || op_code == journal::kSetStudyUserAttr;
  const std::string field = user ? "user_attr" : "system_attr";
  nlohmann::json op;
  op[trial ? "trial_id" : "study_id"] = trial ? trial_id(trial_number) : study_id_;
  op[field] = nlohmann::json::object({{key, value}});
  stage(op_code, op,
        fmt::format("set {} attribute '{}' of {}", user ? "user" : "system", key,
                    trial ? fmt::format("trial {}", trial_number) : "the study"));
}

void JournalTransaction::set_user_attr(int trial, const std::string& key,
                                       const nlohmann::json& value) {
  set_attr(journal::kSetTrialUserAttr, trial, key, value);
}

void JournalTransaction::set_system_attr(int trial, const std::string& key,
                                         const nlohmann::json& value) {
  set_attr(journal::kSetTrialSystemAttr, trial, key, value);
}

void JournalTransaction::set_study_user_attr(const std::string& key, const nlohmann::json& value) {
  set_attr(journal::kSetStudyUserAttr, -1, key, value);
}

void JournalTransaction::set_study_system_attr(const std::string& key,
                                               const nlohmann::json& value) {
  set_attr(journal::kSetStudySystemAttr, -1, key, value);
}

}  // namespace kiln::sweep
