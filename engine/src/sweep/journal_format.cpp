// The text forms of Optuna's journal: Python's JSON, distribution_to_json and the
// ISO datetimes (optuna/distributions.py, optuna/storages/journal/_storage.py).
#include "sweep/journal_replay.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <limits>
#include <set>

namespace kiln::sweep::journal {

namespace {

// nlohmann's parser knows no NaN or Infinity, which Python's json writes bare. They
// travel through it as these strings: a NUL never starts a string Optuna writes.
struct NonFinite {
  std::string_view python;    // the token Python writes
  std::string_view sentinel;  // the JSON string standing for it
  double value;
};
const NonFinite kNonFinite[] = {
    {"-Infinity", "\"\\u0000kiln:-Infinity\"", -std::numeric_limits<double>::infinity()},
    {"Infinity", "\"\\u0000kiln:Infinity\"", std::numeric_limits<double>::infinity()},
    {"NaN", "\"\\u0000kiln:NaN\"", std::numeric_limits<double>::quiet_NaN()},
};

std::string sentinel_value(const NonFinite& token) {
  // The sentinel's JSON text without its quotes and with the escaped NUL (7 bytes:
  // the quote and \u0000) decoded.
  return std::string(1, '\0') + std::string(token.sentinel.substr(7, token.sentinel.size() - 8));
}

template <class Json, class Visit>
void visit_all(Json& value, const Visit& visit) {
  visit(value);
  if (value.is_structured())
    for (auto& child : value) visit_all(child, visit);
}

// Replaces Python's bare tokens outside strings by the sentinels.
std::string with_sentinels(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 32);
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < text.size()) {
        out.push_back(text[++i]);
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    bool replaced = false;
    for (const NonFinite& token : kNonFinite) {
      if (text.substr(i, token.python.size()) == token.python) {
        out += token.sentinel;
        i += token.python.size() - 1;
        replaced = true;
        break;
      }
    }
    if (replaced) continue;
    if (c == '"') in_string = true;
    out.push_back(c);
  }
  return out;
}

template <class Json>
std::string dump_python(Json value) {
  bool non_finite = false;
  visit_all(value, [&](Json& node) {
    if (!node.is_number_float() || std::isfinite(node.template get<double>())) return;
    const double number = node.template get<double>();
    const NonFinite& token =
        std::isnan(number) ? kNonFinite[2] : (number < 0 ? kNonFinite[0] : kNonFinite[1]);
    node = sentinel_value(token);
    non_finite = true;
  });
  // ensure_ascii, as Python's json.dumps: non-ASCII text as \u escapes.
  std::string text = value.dump(-1, ' ', true);
  if (!non_finite) return text;
  for (const NonFinite& token : kNonFinite) {
    for (std::size_t at = text.find(token.sentinel); at != std::string::npos;
         at = text.find(token.sentinel, at + token.python.size()))
      text.replace(at, token.sentinel.size(), token.python);
  }
  return text;
}

double number(const nlohmann::json& value, const char* what) {
  if (!value.is_number())
    throw LineError(fmt::format("{} is {}, not a number", what, value.dump()));
  return value.get<double>();
}

// Python's int(x): truncation towards zero.
std::int64_t integer(const nlohmann::json& value, const char* what) {
  if (value.is_number_integer()) return value.get<std::int64_t>();
  return static_cast<std::int64_t>(std::trunc(number(value, what)));
}

// Optuna's constructors lower `high` to the last step at or below it.
Distribution adjusted(Distribution distribution) {
  if (auto* ints = std::get_if<IntDistribution>(&distribution)) {
    if (ints->step > 0 && ints->high >= ints->low)
      ints->high = (ints->high - ints->low) / ints->step * ints->step + ints->low;
  } else if (auto* floats = std::get_if<FloatDistribution>(&distribution)) {
    if (floats->step && *floats->step > 0 && floats->high >= floats->low) {
      const double steps = (floats->high - floats->low) / *floats->step;
      if (std::abs(steps - std::round(steps)) > 1e-9)
        floats->high = std::floor(steps) * *floats->step + floats->low;
    }
  }
  return distribution;
}

ParsedDistribution from_class(const std::string& name, const nlohmann::json& attributes) {
  // The keyword arguments each class's constructor takes (cls(**attributes)).
  static const std::map<std::string, std::set<std::string>> kArguments = {
      {"FloatDistribution", {"low", "high", "log", "step"}},
      {"UniformDistribution", {"low", "high"}},
      {"LogUniformDistribution", {"low", "high"}},
      {"DiscreteUniformDistribution", {"low", "high", "q"}},
      {"IntDistribution", {"low", "high", "log", "step"}},
      {"IntUniformDistribution", {"low", "high", "step"}},
      {"IntLogUniformDistribution", {"low", "high", "step"}},
      {"CategoricalDistribution", {"choices"}},
  };
  const auto known = kArguments.find(name);
  if (known == kArguments.end()) throw LineError("unknown distribution class " + name);
  if (!attributes.is_object()) throw LineError(name + " without an attributes object");
  for (const auto& [key, value] : attributes.items())
    if (!known->second.contains(key)) throw LineError(name + " has no argument '" + key + "'");
  const auto arg = [&](const char* key) -> const nlohmann::json& {
    if (!attributes.contains(key)) throw LineError(name + " lacks '" + std::string(key) + "'");
    return attributes.at(key);
  };
  if (name == "CategoricalDistribution") {
    if (!arg("choices").is_array()) throw LineError("choices is not a list");
    return {CategoricalDistribution{arg("choices").get<std::vector<nlohmann::json>>()}, name};
  }
  const bool legacy_log = name == "LogUniformDistribution" || name == "IntLogUniformDistribution";
  const bool log = legacy_log || (attributes.contains("log") && attributes.at("log").is_boolean() &&
                                  attributes.at("log").get<bool>());
  if (name.find("Int") == 0) {
    IntDistribution ints{integer(arg("low"), "low"), integer(arg("high"), "high"), log, 1};
    if (attributes.contains("step")) ints.step = integer(attributes.at("step"), "step");
    return {adjusted(ints), name};
  }
  FloatDistribution floats{number(arg("low"), "low"), number(arg("high"), "high"), log, {}};
  const char* step_key = name == "DiscreteUniformDistribution" ? "q" : "step";
  if (attributes.contains(step_key) && !attributes.at(step_key).is_null())
    floats.step = number(attributes.at(step_key), step_key);
  return {adjusted(floats), name};
}

// The abbreviated form {"type": "float", "low": ..., "high": ...} Optuna also reads.
ParsedDistribution from_type(const nlohmann::json& json) {
  const std::string type = json.at("type").is_string() ? json.at("type").get<std::string>() : "";
  if (type == "categorical") {
    if (!json.contains("choices") || !json.at("choices").is_array())
      throw LineError("categorical distribution without a choices list");
    return {CategoricalDistribution{json.at("choices").get<std::vector<nlohmann::json>>()},
            "CategoricalDistribution"};
  }
  if (type != "float" && type != "int")
    throw LineError("unknown distribution type " + json.at("type").dump());
  if (!json.contains("low") || !json.contains("high"))
    throw LineError(type + " distribution without low and high");
  const bool log = json.value("log", false);
  const bool has_step = json.contains("step") && !json.at("step").is_null();
  if (type == "int") {
    return {
        adjusted(IntDistribution{integer(json.at("low"), "low"), integer(json.at("high"), "high"),
                                 log, has_step ? integer(json.at("step"), "step") : 1}),
        "IntDistribution"};
  }
  FloatDistribution floats{number(json.at("low"), "low"), number(json.at("high"), "high"), log, {}};
  if (has_step) floats.step = number(json.at("step"), "step");
  return {adjusted(floats), "FloatDistribution"};
}

}  // namespace

nlohmann::json parse_python_json(std::string_view text) {
  const bool maybe_non_finite =
      text.find("NaN") != std::string_view::npos || text.find("Infinity") != std::string_view::npos;
  nlohmann::json value = nlohmann::json::parse(
      maybe_non_finite ? with_sentinels(text) : std::string(text), nullptr, false);
  if (value.is_discarded()) throw LineError("not valid JSON");
  if (!maybe_non_finite) return value;
  visit_all(value, [](nlohmann::json& node) {
    if (!node.is_string()) return;
    const auto& text_value = node.get_ref<const std::string&>();
    if (text_value.empty() || text_value[0] != '\0') return;
    for (const NonFinite& token : kNonFinite) {
      if (text_value != sentinel_value(token)) continue;
      node = token.value;  // frees the string text_value refers to: look no further
      return;
    }
  });
  return value;
}

std::string dump_python_json(const nlohmann::json& value) { return dump_python(value); }
std::string dump_python_json(const nlohmann::ordered_json& value) { return dump_python(value); }

const char* optuna_class_name(const Distribution& distribution) noexcept {
  if (std::holds_alternative<FloatDistribution>(distribution)) return "FloatDistribution";
  if (std::holds_alternative<IntDistribution>(distribution)) return "IntDistribution";
  return "CategoricalDistribution";
}

std::string distribution_to_optuna_text(const Distribution& distribution) {
  const auto num = [](double value) { return dump_python_json(nlohmann::json(value)); };
  const auto boolean = [](bool value) { return value ? "true" : "false"; };
  std::string attributes;
  // The attribute order is that of each class's __dict__, as Optuna writes it.
  if (const auto* floats = std::get_if<FloatDistribution>(&distribution)) {
    attributes = fmt::format(R"("step": {}, "low": {}, "high": {}, "log": {})",
                             floats->step ? num(*floats->step) : "null", num(floats->low),
                             num(floats->high), boolean(floats->log));
  } else if (const auto* ints = std::get_if<IntDistribution>(&distribution)) {
    attributes = fmt::format(R"("log": {}, "step": {}, "low": {}, "high": {})", boolean(ints->log),
                             ints->step, ints->low, ints->high);
  } else {
    std::string choices;
    for (const nlohmann::json& choice : std::get<CategoricalDistribution>(distribution).choices)
      choices += (choices.empty() ? "" : ", ") + dump_python_json(choice);
    attributes = "\"choices\": [" + choices + "]";
  }
  return fmt::format(R"({{"name": "{}", "attributes": {{{}}}}})", optuna_class_name(distribution),
                     attributes);
}

ParsedDistribution distribution_from_optuna_text(const std::string& text) {
  const nlohmann::json json = parse_python_json(text);
  if (!json.is_object()) throw LineError("distribution " + text + " is not a JSON object");
  ParsedDistribution parsed;
  if (json.contains("name")) {
    if (!json.at("name").is_string())
      throw LineError("distribution name " + json.at("name").dump());
    parsed =
        from_class(json.at("name").get<std::string>(), json.value("attributes", nlohmann::json()));
  } else if (json.contains("type")) {
    parsed = from_type(json);
  } else {
    throw LineError("distribution " + text + " has neither name nor type");
  }
  if (auto problem = distribution_problem(parsed.distribution))
    throw LineError("distribution " + text + ": " + *problem);
  return parsed;
}

std::optional<std::string> distribution_problem(const Distribution& distribution) {
  if (const auto* floats = std::get_if<FloatDistribution>(&distribution)) {
    if (floats->log && floats->step) return "a step is not supported with log";
    if (!(floats->low <= floats->high))
      return fmt::format("low {} > high {}", floats->low, floats->high);
    if (floats->log && floats->low <= 0) return "log needs low > 0";
    if (floats->step && !(*floats->step > 0)) return "step must be > 0";
  } else if (const auto* ints = std::get_if<IntDistribution>(&distribution)) {
    if (ints->log && ints->step != 1) return "a step other than 1 is not supported with log";
    if (ints->low > ints->high) return fmt::format("low {} > high {}", ints->low, ints->high);
    if (ints->log && ints->low < 1) return "log needs low >= 1";
    if (ints->step <= 0) return "step must be > 0";
    if ((ints->high - ints->low) % ints->step != 0)
      return "high - low is not a multiple of step (Optuna would lower high)";
  } else if (std::get<CategoricalDistribution>(distribution).choices.empty()) {
    return "no choices";
  }
  return std::nullopt;
}

bool contains(const Distribution& distribution, double internal) noexcept {
  if (const auto* floats = std::get_if<FloatDistribution>(&distribution)) {
    if (!(floats->low <= internal && internal <= floats->high)) return false;
    if (!floats->step) return true;
    const double steps = (internal - floats->low) / *floats->step;
    return std::abs(steps - std::round(steps)) < 1e-8;
  }
  if (internal != std::trunc(internal)) return false;
  if (const auto* ints = std::get_if<IntDistribution>(&distribution)) {
    const auto value = static_cast<std::int64_t>(internal);
    return ints->low <= value && value <= ints->high && (value - ints->low) % ints->step == 0;
  }
  const auto& choices = std::get<CategoricalDistribution>(distribution).choices;
  return internal >= 0 && internal < static_cast<double>(choices.size());
}

namespace {

std::string format_utc(std::int64_t micros) {
  const std::int64_t seconds =
      micros >= 0 ? micros / 1'000'000 : -((-micros + 999'999) / 1'000'000);
  const auto fraction = static_cast<int>(micros - seconds * 1'000'000);
  const auto time = static_cast<std::time_t>(seconds);
  std::tm utc{};
  ::gmtime_r(&time, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, fraction);
}

// Reads `count` digits at `at`; -1 when they are not all there.
int digits(std::string_view text, std::size_t at, std::size_t count) {
  if (at + count > text.size()) return -1;
  int value = 0;
  for (std::size_t i = at; i < at + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return -1;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

}  // namespace

std::string utc_now_iso() {
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return format_utc(micros) + "+00:00";
}

std::string utc_datetime(std::string_view iso) {
  const auto bad = [&]() {
    return LineError("'" + std::string(iso) + "' is not an ISO 8601 time");
  };
  // YYYY-MM-DD[T ]HH:MM[:SS[.f...]][Z|(+|-)HH:MM[:SS]], the forms Optuna has written.
  std::tm tm{};
  tm.tm_year = digits(iso, 0, 4) - 1900;
  tm.tm_mon = digits(iso, 5, 2) - 1;
  tm.tm_mday = digits(iso, 8, 2);
  tm.tm_hour = digits(iso, 11, 2);
  tm.tm_min = digits(iso, 14, 2);
  if (iso.size() < 16 || iso[4] != '-' || iso[7] != '-' || (iso[10] != 'T' && iso[10] != ' ') ||
      iso[13] != ':' || tm.tm_year < -1899 || tm.tm_mon < 0 || tm.tm_mday < 0 || tm.tm_hour < 0 ||
      tm.tm_min < 0)
    throw bad();
  std::size_t at = 16;
  std::int64_t micros = 0;
  if (at < iso.size() && iso[at] == ':') {
    tm.tm_sec = digits(iso, at + 1, 2);
    if (tm.tm_sec < 0) throw bad();
    at += 3;
    if (at < iso.size() && iso[at] == '.') {
      std::size_t count = 0;
      for (++at; at < iso.size() && iso[at] >= '0' && iso[at] <= '9'; ++at, ++count)
        if (count < 6) micros = micros * 10 + (iso[at] - '0');
      if (count == 0) throw bad();
      for (; count < 6; ++count) micros *= 10;
    }
  }
  std::time_t seconds = 0;
  if (at == iso.size()) {
    tm.tm_isdst = -1;  // Python's astimezone() takes a naive time as local time
    seconds = ::mktime(&tm);
  } else {
    int offset = 0;
    if (iso[at] != 'Z') {
      const bool negative = iso[at] == '-';
      const int hours = digits(iso, at + 1, 2);
      const int minutes = digits(iso, at + 4, 2);
      if ((iso[at] != '+' && !negative) || hours < 0 || minutes < 0 || iso[at + 3] != ':')
        throw bad();
      offset = (hours * 60 + minutes) * 60;
      at += 6;
      if (at < iso.size() && iso[at] == ':') {
        const int secs = digits(iso, at + 1, 2);
        if (secs < 0) throw bad();
        offset += secs;
        at += 3;
      }
      if (negative) offset = -offset;
    } else {
      ++at;
    }
    if (at != iso.size()) throw bad();
    seconds = ::timegm(&tm) - offset;
  }
  return format_utc(static_cast<std::int64_t>(seconds) * 1'000'000 + micros);
}

}  // namespace kiln::sweep::journal
