// The replay of Optuna's journal ops, rule for rule as JournalStorageReplayResult
// (optuna/storages/journal/_storage.py, checked against Optuna 5.1.0): where Optuna
// skips an op (an unknown study or trial, a finished trial, a second claim of a
// waiting trial, a conflicting distribution) this returns why and changes nothing;
// where Optuna's replay raises (a missing field, a bad state, a parameter without
// its distribution) this throws journal::LineError.
#include "sweep/journal_replay.h"

#include <fmt/format.h>

#include <cmath>

namespace kiln::sweep {

using journal::LineError;
using journal::StudyRecord;

namespace {

const nlohmann::json& field(const nlohmann::json& op, const char* key) {
  if (!op.contains(key)) throw LineError(std::string("no '") + key + "'");
  return op.at(key);
}

int integer_field(const nlohmann::json& op, const char* key) {
  const nlohmann::json& value = field(op, key);
  if (!value.is_number_integer()) throw LineError(std::string("'") + key + "' is " + value.dump());
  return value.get<int>();
}

TrialState trial_state(const nlohmann::json& value) {
  if (!value.is_number_integer() || value.get<int>() < 0 || value.get<int>() > 4)
    throw LineError(value.dump() + " is not a TrialState");
  return static_cast<TrialState>(value.get<int>());
}

bool finished(TrialState state) {
  return state != TrialState::Running && state != TrialState::Waiting;
}

double float_value(const nlohmann::json& value, const char* what) {
  if (value.is_null()) return std::nan("");  // Optuna keeps None; kiln has no such double
  if (!value.is_number())
    throw LineError(std::string(what) + " " + value.dump() + " is not a number");
  return value.get<double>();
}

// Optuna stores the external value and converts back when asked: an int()
// truncation for IntDistribution, an index (negative ones count from the end, as in
// Python) for CategoricalDistribution.
double internal_value(const Distribution& distribution, const nlohmann::json& value,
                      const std::string& name) {
  const double internal = float_value(value, "parameter value");
  if (std::holds_alternative<FloatDistribution>(distribution)) return internal;
  double index = std::trunc(internal);
  if (const auto* categorical = std::get_if<CategoricalDistribution>(&distribution)) {
    const auto size = static_cast<double>(categorical->choices.size());
    if (index < 0) index += size;
    if (!(index >= 0 && index < size))
      throw LineError(fmt::format("parameter '{}': choice index {} out of range", name, internal));
  }
  return index;
}

bool compatible(const Distribution& old_one, const std::string& old_class,
                const Distribution& new_one, const std::string& new_class) {
  if (old_class != new_class) return false;  // Optuna compares classes
  if (const auto* floats = std::get_if<FloatDistribution>(&old_one))
    return floats->log == std::get<FloatDistribution>(new_one).log;
  if (const auto* ints = std::get_if<IntDistribution>(&old_one))
    return ints->log == std::get<IntDistribution>(new_one).log;
  return old_one == new_one;
}

std::string class_of(const StudyRecord& record, int number, const std::string& param,
                     const Distribution& distribution) {
  const auto legacy = record.legacy_classes.find({number, param});
  return legacy != record.legacy_classes.end() ? legacy->second
                                               : journal::optuna_class_name(distribution);
}

void note_param(StudyRecord& record, int number, const std::string& param,
                const journal::ParsedDistribution& parsed) {
  if (parsed.class_name != journal::optuna_class_name(parsed.distribution))
    record.legacy_classes[{number, param}] = parsed.class_name;
  else
    record.legacy_classes.erase({number, param});
  const auto first = record.first_with_param.find(param);
  if (first == record.first_with_param.end() || number < first->second)
    record.first_with_param[param] = number;
}

// A one-key object, as Optuna asserts for attribute ops; merged into `attrs`.
void merge_one(nlohmann::json& attrs, const nlohmann::json& update, const char* field_name) {
  if (!update.is_object() || update.size() != 1)
    throw LineError(std::string("'") + field_name + "' must hold exactly one key");
  if (!attrs.is_object()) attrs = nlohmann::json::object();
  attrs[update.begin().key()] = update.begin().value();
}

}  // namespace

std::optional<std::string> JournalReplay::apply(const nlohmann::json& op) {
  if (!op.is_object()) throw LineError("not a JSON object");
  const nlohmann::json& code = field(op, "op_code");
  // Python compares op_code == JournalOperation.X, so 4.0 is op 4 too.
  const double number = code.is_number() ? code.get<double>() : -1;
  switch (number == std::trunc(number) ? static_cast<int>(number) : -1) {
    case journal::kCreateStudy:
      return create_study(op);
    case journal::kDeleteStudy:
      return delete_study(op);
    case journal::kSetStudyUserAttr:
      return set_study_attr(op, "user_attr");
    case journal::kSetStudySystemAttr:
      return set_study_attr(op, "system_attr");
    case journal::kCreateTrial:
      return create_trial(op);
    case journal::kSetTrialParam:
      return set_param(op);
    case journal::kSetTrialStateValues:
      return set_state_values(op);
    case journal::kSetTrialIntermediateValue:
      return set_intermediate(op);
    case journal::kSetTrialUserAttr:
      return set_trial_attr(op, "user_attr");
    case journal::kSetTrialSystemAttr:
      return set_trial_attr(op, "system_attr");
    case journal::kDiscardTrials:
      return "DISCARD_TRIALS is Rustuna's; Optuna skips it";
    default:
      throw LineError("unknown op code " + code.dump());
  }
}

const StudyRecord* JournalReplay::find(std::string_view name) const {
  for (const auto& [id, record] : studies_)
    if (record.study.name == name) return &record;
  return nullptr;
}

std::vector<std::string> JournalReplay::names() const {
  std::vector<std::string> names;
  for (const auto& [id, record] : studies_) names.push_back(record.study.name);
  return names;
}

std::optional<std::string> JournalReplay::create_study(const nlohmann::json& op) {
  const nlohmann::json& name = field(op, "study_name");
  const nlohmann::json& directions = field(op, "directions");
  if (!name.is_string()) throw LineError("'study_name' is " + name.dump());
  if (!directions.is_array()) throw LineError("'directions' is " + directions.dump());
  StudyRecord record;
  for (const nlohmann::json& direction : directions) {
    if (!direction.is_number_integer() || direction.get<int>() < 0 || direction.get<int>() > 2)
      throw LineError(direction.dump() + " is not a StudyDirection");
    record.directions.push_back(direction.get<int>());
  }
  if (find(name.get<std::string>()) != nullptr)
    return "a study named '" + name.get<std::string>() + "' exists already";
  record.id = next_study_id_++;
  record.study.name = name.get<std::string>();
  if (record.directions.size() == 1 && record.directions[0] != 0)
    record.study.direction = static_cast<Direction>(record.directions[0]);
  studies_.emplace(record.id, std::move(record));
  return std::nullopt;
}

std::optional<std::string> JournalReplay::delete_study(const nlohmann::json& op) {
  // The study's trials keep their trial ids; ops on them change nothing visible.
  if (studies_.erase(integer_field(op, "study_id")) == 0) return "no such study";
  return std::nullopt;
}

std::optional<std::string> JournalReplay::set_study_attr(const nlohmann::json& op,
                                                         const char* name) {
  const auto study = studies_.find(integer_field(op, "study_id"));
  if (study == studies_.end()) return "no such study";
  nlohmann::json& attrs = std::string(name) == "user_attr" ? study->second.study.user_attrs
                                                           : study->second.study.system_attrs;
  merge_one(attrs, field(op, name), name);
  return std::nullopt;
}

std::optional<std::string> JournalReplay::create_trial(const nlohmann::json& op) {
  const auto study = studies_.find(integer_field(op, "study_id"));
  if (study == studies_.end()) return "no such study";
  StudyRecord& record = study->second;
  Trial trial;
  trial.number = static_cast<int>(record.trial_ids.size());
  std::map<std::string, journal::ParsedDistribution> parsed;
  if (op.contains("distributions")) {
    for (const auto& [name, text] : op.at("distributions").items()) {
      if (!text.is_string()) throw LineError("distribution of '" + name + "' is not a JSON text");
      parsed.emplace(name, journal::distribution_from_optuna_text(text.get<std::string>()));
      trial.distributions.emplace(name, parsed.at(name).distribution);
    }
  }
  if (op.contains("params")) {
    for (const auto& [name, value] : op.at("params").items()) {
      const auto distribution = trial.distributions.find(name);
      if (distribution == trial.distributions.end())
        throw LineError("parameter '" + name + "' has no distribution");
      trial.params[name] = internal_value(distribution->second, value, name);
    }
  }
  const nlohmann::json& start = field(op, "datetime_start");
  if (!start.is_null()) {
    if (!start.is_string()) throw LineError("'datetime_start' is " + start.dump());
    trial.datetime_start = journal::utc_datetime(start.get<std::string>());
  }
  if (op.contains("datetime_complete")) {
    const nlohmann::json& complete = op.at("datetime_complete");
    if (!complete.is_string()) throw LineError("'datetime_complete' is " + complete.dump());
    trial.datetime_complete = journal::utc_datetime(complete.get<std::string>());
  }
  trial.state = trial_state(op.value("state", nlohmann::json(0)));
  const nlohmann::json value = op.value("value", nlohmann::json());
  const nlohmann::json values = op.value("values", nlohmann::json());
  if (!value.is_null() && !values.is_null()) throw LineError("both 'value' and 'values'");
  if (!value.is_null()) trial.value = float_value(value, "value");
  if (!values.is_null()) {
    if (!values.is_array()) throw LineError("'values' is " + values.dump());
    if (values.size() == 1)
      trial.value = float_value(values[0], "value");
    else
      record.single_valued = false;
  }
  trial.user_attrs = op.value("user_attrs", nlohmann::json::object());
  trial.system_attrs = op.value("system_attrs", nlohmann::json::object());
  // Named: items() refers to the json, and a temporary in the range-for would be
  // gone before the loop reads it (ASan: stack-use-after-scope).
  const nlohmann::json intermediate_values =
      op.value("intermediate_values", nlohmann::json::object());
  for (const auto& [step, intermediate] : intermediate_values.items()) {
    std::size_t used = 0;
    std::int64_t key = 0;
    try {
      key = std::stoll(step, &used);
    } catch (const std::exception&) {
    }
    if (used == 0 || used != step.size())
      throw LineError("intermediate step '" + step + "' is not an int");
    trial.intermediate[key] = float_value(intermediate, "intermediate value");
  }
  const int trial_id = static_cast<int>(trials_.size());
  for (const auto& [name, value] : trial.params)
    note_param(record, trial.number, name, parsed.at(name));
  trials_.emplace_back(record.id, trial.number);
  record.trial_ids.push_back(trial_id);
  record.study.trials.push_back(std::move(trial));
  return std::nullopt;
}

JournalReplay::Target JournalReplay::updatable(const nlohmann::json& op) {
  const int trial_id = integer_field(op, "trial_id");
  if (trial_id < 0 || trial_id >= static_cast<int>(trials_.size()))
    return {nullptr, nullptr, fmt::format("no trial with id {}", trial_id)};
  const auto [study_id, number] = trials_[static_cast<std::size_t>(trial_id)];
  const auto study = studies_.find(study_id);
  if (study == studies_.end()) return {nullptr, nullptr, "the trial's study was deleted"};
  Trial& trial = study->second.study.trials[static_cast<std::size_t>(number)];
  if (finished(trial.state))
    return {nullptr, nullptr,
            fmt::format("trial {} has already finished ({}) and cannot be updated", number,
                        to_string(trial.state))};
  return {&study->second, &trial, {}};
}

std::optional<std::string> JournalReplay::set_param(const nlohmann::json& op) {
  const Target target = updatable(op);
  if (target.trial == nullptr) return target.ignored_because;
  const nlohmann::json& name_json = field(op, "param_name");
  if (!name_json.is_string()) throw LineError("'param_name' is " + name_json.dump());
  const std::string name = name_json.get<std::string>();
  const nlohmann::json& value = field(op, "param_value_internal");
  const nlohmann::json& text = field(op, "distribution");
  if (!text.is_string()) throw LineError("'distribution' is not a JSON text");
  const journal::ParsedDistribution parsed =
      journal::distribution_from_optuna_text(text.get<std::string>());
  StudyRecord& record = *target.record;
  if (const auto first = record.first_with_param.find(name);
      first != record.first_with_param.end()) {
    const Trial& earlier = record.study.trials[static_cast<std::size_t>(first->second)];
    const Distribution& old_one = earlier.distributions.at(name);
    if (!compatible(old_one, class_of(record, earlier.number, name, old_one), parsed.distribution,
                    parsed.class_name))
      return fmt::format("parameter '{}' was recorded with another distribution in trial {}", name,
                         earlier.number);
  }
  target.trial->params[name] = internal_value(parsed.distribution, value, name);
  target.trial->distributions[name] = parsed.distribution;
  note_param(record, target.trial->number, name, parsed);
  return std::nullopt;
}

std::optional<std::string> JournalReplay::set_state_values(const nlohmann::json& op) {
  const Target target = updatable(op);
  if (target.trial == nullptr) return target.ignored_because;
  const TrialState state = trial_state(field(op, "state"));
  Trial& trial = *target.trial;
  if (state == TrialState::Running && trial.state == TrialState::Running)
    return fmt::format("trial {} is already running (another worker claimed it)", trial.number);
  const auto time = [&](const char* key) {
    const nlohmann::json& text = field(op, key);
    if (!text.is_string()) throw LineError(std::string("'") + key + "' is " + text.dump());
    return journal::utc_datetime(text.get<std::string>());
  };
  std::string start = trial.datetime_start;
  std::string complete = trial.datetime_complete;
  if (state == TrialState::Running) start = time("datetime_start");
  if (finished(state)) complete = time("datetime_complete");
  const nlohmann::json& values = field(op, "values");
  std::optional<double> value = trial.value;
  if (!values.is_null()) {
    if (!values.is_array()) throw LineError("'values' is " + values.dump());
    if (values.size() == 1)
      value = float_value(values[0], "value");
    else
      target.record->single_valued = false;
  }
  trial.state = state;
  trial.datetime_start = std::move(start);
  trial.datetime_complete = std::move(complete);
  trial.value = value;
  return std::nullopt;
}

std::optional<std::string> JournalReplay::set_intermediate(const nlohmann::json& op) {
  const Target target = updatable(op);
  if (target.trial == nullptr) return target.ignored_because;
  const nlohmann::json& step = field(op, "step");
  if (!step.is_number()) throw LineError("'step' is " + step.dump());
  const double value = float_value(field(op, "intermediate_value"), "intermediate value");
  target.trial->intermediate[static_cast<std::int64_t>(step.get<double>())] = value;
  return std::nullopt;
}

std::optional<std::string> JournalReplay::set_trial_attr(const nlohmann::json& op,
                                                         const char* name) {
  const Target target = updatable(op);
  if (target.trial == nullptr) return target.ignored_because;
  nlohmann::json& attrs =
      std::string(name) == "user_attr" ? target.trial->user_attrs : target.trial->system_attrs;
  merge_one(attrs, field(op, name), name);
  return std::nullopt;
}

}  // namespace kiln::sweep
