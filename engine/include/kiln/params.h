// Stage parameters: the schema a stage type declares next to its code, and the
// validated values a stage receives. The whole pipeline is checked against the
// schemas before any stage runs, so a stage reads its parameters without checking
// their presence or type again.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

enum class ParamType {
  Bool,
  Int,
  Float,
  String,
  Path,  // a file that must exist; its content (not its name) enters the cache key
  IntList,
  FloatList,
  StringList,
  Object,  // a free-form mapping or list, checked by the stage's own `check`
};

const char* to_string(ParamType type) noexcept;

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::String;
  std::optional<nlohmann::json> default_value;  // nullopt: the parameter is required
  std::string doc;
  std::vector<std::string> choices;  // for String: the accepted values, if limited
};

class ParamSchema {
 public:
  ParamSchema& required(std::string name, ParamType type, std::string doc);
  ParamSchema& optional(std::string name, ParamType type, nlohmann::json default_value,
                        std::string doc);
  // A String parameter limited to `choices`; the first is the default.
  ParamSchema& choice(std::string name, std::vector<std::string> choices, std::string doc);

  const std::vector<ParamSpec>& specs() const noexcept { return specs_; }
  const ParamSpec* find(std::string_view name) const noexcept;

 private:
  ParamSchema& add(ParamSpec spec);
  std::vector<ParamSpec> specs_;
};

// Validated parameter values of one stage, defaults filled in. Each value
// remembers where it came from ("pipeline.yaml:12:9", "override train.with.lr",
// "default") so that a stage can report a bad value at its source.
class Params {
 public:
  Params() = default;
  Params(std::string stage, nlohmann::json values, std::map<std::string, std::string> origins);

  bool get_bool(std::string_view name) const;
  std::int64_t get_int(std::string_view name) const;
  double get_float(std::string_view name) const;
  std::string get_string(std::string_view name) const;
  std::filesystem::path get_path(std::string_view name) const;
  std::vector<std::int64_t> get_int_list(std::string_view name) const;
  std::vector<double> get_float_list(std::string_view name) const;
  std::vector<std::string> get_string_list(std::string_view name) const;
  const nlohmann::json& get(std::string_view name) const;
  bool has(std::string_view name) const;

  // All values as one JSON object (keys sorted): what the cache key hashes.
  const nlohmann::json& values() const noexcept { return values_; }
  const std::string& stage() const noexcept { return stage_; }
  // "pipeline.yaml:12:9" for a value from the file, or how else it was set.
  std::string origin(std::string_view name) const;

  // Throws ConfigError "<origin>: <stage>.with.<name>: <problem>".
  [[noreturn]] void fail(std::string_view name, std::string_view problem) const;

 private:
  std::string stage_;
  nlohmann::json values_ = nlohmann::json::object();
  std::map<std::string, std::string, std::less<>> origins_;
};

}  // namespace kiln
