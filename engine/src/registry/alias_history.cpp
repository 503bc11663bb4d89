// The alias history: models/<name>/.kiln-alias-history, one JSON object per line,
// appended under the models lock after each alias move (docs/formats.md). MLflow
// keeps only where an alias points now; rollback needs where it pointed before.
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/registry/names.h>

#include "registry/store_files.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace kiln::registry {
namespace fs = std::filesystem;
using namespace detail;

namespace {

std::string to_line(const AliasEvent& event) {
  nlohmann::json line = {{"time", event.time_ms},  {"alias", event.alias},
                         {"action", event.action}, {"version", event.version},
                         {"previous", nullptr},    {"user", event.user}};
  if (event.previous) line["previous"] = *event.previous;
  return line.dump();
}

// A line that does not parse (a file edited by hand) is skipped with a warning:
// the history only steers rollback, it never decides where an alias points now.
std::optional<AliasEvent> parse_line(const std::string& line, const fs::path& file) {
  try {
    const nlohmann::json json = nlohmann::json::parse(line);
    AliasEvent event;
    event.time_ms = json.at("time").get<std::int64_t>();
    event.alias = json.at("alias").get<std::string>();
    event.action = json.at("action").get<std::string>();
    event.version = json.at("version").get<std::int64_t>();
    if (!json.at("previous").is_null()) event.previous = json.at("previous").get<std::int64_t>();
    event.user = json.value("user", "");
    return event;
  } catch (const nlohmann::json::exception& error) {
    log::warn("registry: {}: skipping a malformed line: {}", file.string(), error.what());
    return std::nullopt;
  }
}

// The versions an alias returns through on rollback, oldest first; the last one is
// where the alias points. A move pushes the version it left (when the history did
// not know it: the alias was moved by another tool) and the one it went to; a
// rollback drops the version it left instead.
class AliasStack {
 public:
  void apply(const AliasEvent& event) {
    if (event.previous) {
      push(*event.previous);
      if (event.action == "rollback") versions_.pop_back();
    }
    push(event.version);
  }

  // Where a rollback from `current` goes, if anywhere.
  std::optional<std::int64_t> rollback_target(std::optional<std::int64_t> current) {
    if (current) {
      push(*current);
      versions_.pop_back();
    }
    if (versions_.empty()) return std::nullopt;
    return versions_.back();
  }

 private:
  void push(std::int64_t version) {
    if (versions_.empty() || versions_.back() != version) versions_.push_back(version);
  }
  std::vector<std::int64_t> versions_;
};

}  // namespace

std::vector<AliasEvent> MlflowStore::alias_history(const std::string& model) const {
  require_model(model);
  const fs::path file = model_directory(model) / kAliasHistoryFile;
  std::vector<AliasEvent> events;
  const auto text = read_if_exists(file.parent_path(), file);
  if (!text) return events;
  std::size_t start = 0;
  while (start < text->size()) {
    std::size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    if (end > start)
      if (auto event = parse_line(text->substr(start, end - start), file))
        events.push_back(std::move(*event));
    start = end + 1;
  }
  return events;
}

// Called under the models lock. The alias file first, then the history line: a
// crash between the two leaves a move the history lacks, which AliasStack treats
// as a move by another tool, so rollback still returns to the version before it.
void MlflowStore::publish_alias(const std::string& model, const AliasEvent& event) {
  const fs::path dir = model_directory(model);
  // The file holds the bare number, as MLflow's set_registered_model_alias writes it.
  Staging(staging_).publish_file(dir / "aliases" / event.alias, std::to_string(event.version));
  touch_model(model, event.time_ms);
  append_line(dir / kAliasHistoryFile, to_line(event));
}

std::int64_t MlflowStore::rollback_alias(const std::string& model, const std::string& alias) {
  validate_alias(alias);
  require_model(model);
  FileLock lock(mlruns_ / kModelsLock);
  AliasStack stack;
  for (const AliasEvent& event : alias_history(model))
    if (event.alias == alias) stack.apply(event);
  const std::optional<std::int64_t> current = alias_version(model, alias);
  const std::optional<std::int64_t> target = stack.rollback_target(current);
  if (!target)
    throw ConfigError(fmt::format(
        "registry: model '{}' alias '{}': no earlier version to roll back to ({})", model, alias,
        current ? fmt::format("it points at version {}, the first it held", *current)
                : std::string("the alias was never set")));
  try {
    require_version(model, *target);
  } catch (const ConfigError&) {
    throw ConfigError(fmt::format(
        "registry: model '{}' alias '{}': version {}, which held it before, no longer exists",
        model, alias, *target));
  }
  publish_alias(model, {.time_ms = now_ms(),
                        .alias = alias,
                        .action = "rollback",
                        .version = *target,
                        .previous = current,
                        .user = current_user()});
  return *target;
}

}  // namespace kiln::registry
