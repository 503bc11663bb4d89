#include "step_cache.h"

#include <kiln/clock.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/hash.h>
#include <kiln/registry/registry_root.h>
#include <kiln/runner.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace kiln {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kManifestFormat = "kiln-step-1";

bool inside(const fs::path& path, const fs::path& root) {
  const fs::path relative = path.lexically_normal().lexically_relative(root.lexically_normal());
  return !relative.empty() && *relative.begin() != "..";
}

// An output path read back from a manifest, which anyone with write access to the
// registry may have edited: relative to the registry root, no '..' component, and
// resolving (links included) inside the registry.
fs::path artifact_path(const fs::path& root, const std::string& stored,
                       const fs::path& manifest_file, const std::string& name) {
  const fs::path relative(stored);
  const auto refuse = [&](std::string_view why) {
    throw DataError(fmt::format("{}: output '{}' has path '{}', {}", manifest_file.string(), name,
                                stored, why));
  };
  if (relative.is_absolute()) refuse("which is absolute (manifest paths are relative)");
  for (const fs::path& part : relative)
    if (part == "..") refuse("which climbs out with '..'");
  try {
    registry::check_contained(root, root / relative);
  } catch (const DataError& error) {
    refuse(fmt::format("which leaves the registry ({})", error.what()));
  }
  return root / relative;
}

json artifact_to_json(const Artifact& artifact, const fs::path& root) {
  return {{"name", artifact.name},
          {"kind", artifact.kind},
          {"path", artifact.path.empty() ? "" : artifact.path.lexically_relative(root).string()},
          {"content_id", artifact.content_id},
          {"meta", artifact.meta}};
}

// The rename publishes files and manifest together. Without `replace`, another
// process that committed the same key first wins and this copy is dropped; with
// it, the old entry is moved aside first (readers may briefly see no entry and
// re-run the stage, never a mixed one).
void publish(const fs::path& work_dir, const fs::path& final_dir, bool replace) {
  std::error_code ec;
  if (replace && fs::exists(final_dir, ec)) {
    const fs::path old = work_dir.string() + "-replaced";
    if (::rename(final_dir.c_str(), old.c_str()) == 0) fs::remove_all(old, ec);
  }
  if (::rename(work_dir.c_str(), final_dir.c_str()) == 0) return;
  if (errno != EEXIST && errno != ENOTEMPTY)
    throw DataError(fmt::format("{}: cannot commit stage output: {}", final_dir.string(),
                                std::strerror(errno)));
  fs::remove_all(work_dir, ec);
}

}  // namespace

std::string step_cache_key(const PipelineStage& stage, const std::vector<Artifact>& inputs) {
  // Path parameters enter by content, so moving a data file does not re-run a
  // stage and changing its bytes does.
  json params = stage.params.values();
  for (const auto& spec : stage.type->params.specs())
    if (spec.type == ParamType::Path && params.contains(spec.name) && params[spec.name].is_string())
      params[spec.name] = "sha256:" + sha256_file(params[spec.name].get<std::string>());
  Sha256 hash;
  hash.update_field(kManifestFormat);
  hash.update_field(stage.type->name);
  hash.update_field(stage.plugin->name);
  hash.update_field(stage.plugin->version);
  hash.update_field(params.dump());
  for (const auto& input : inputs) {
    hash.update_field(input.kind);
    hash.update_field(input.name);
    hash.update_field(input.content_id);
  }
  return hash.hex_digest();
}

StepCache::StepCache(fs::path registry_root)
    : root_(fs::absolute(registry_root).lexically_normal()), stages_(root_ / "stages") {}

std::optional<std::vector<Artifact>> StepCache::lookup(const std::string& key,
                                                       const std::string& producer) const {
  const fs::path manifest_file = stages_ / key / "manifest.json";
  std::error_code ec;
  if (!fs::exists(manifest_file, ec)) return std::nullopt;
  registry::check_contained(root_, manifest_file);
  json manifest;
  try {
    manifest = json::parse(read_file(manifest_file));
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: corrupt step manifest: {}", manifest_file.string(), e.what()));
  }
  if (manifest.value("format", "") != kManifestFormat)
    throw DataError(fmt::format("{}: unknown step manifest format", manifest_file.string()));
  std::vector<Artifact> outputs;
  for (const auto& entry : manifest.at("outputs")) {
    Artifact artifact;
    artifact.name = entry.at("name");
    artifact.kind = entry.at("kind");
    const std::string path = entry.at("path");
    if (!path.empty()) artifact.path = artifact_path(root_, path, manifest_file, artifact.name);
    artifact.content_id = entry.at("content_id");
    artifact.meta = entry.at("meta");
    artifact.producer = producer;
    if (!artifact.path.empty() && !fs::exists(artifact.path, ec))
      throw DataError(
          fmt::format("{}: output '{}' is missing ({}); remove the stage directory or "
                      "run with --force",
                      manifest_file.string(), artifact.name, artifact.path.string()));
    outputs.push_back(std::move(artifact));
  }
  return outputs;
}

std::string StepCache::producer_run(const std::string& key) const {
  try {
    return json::parse(read_file(stages_ / key / "manifest.json")).value("run_id", "");
  } catch (const std::exception&) {
    return "";
  }
}

fs::path StepCache::lock_file(const std::string& key) const {
  return stages_ / ".locks" / (key + ".lock");
}

fs::path StepCache::resume_dir(const std::string& key) const { return stages_ / ".resume" / key; }

fs::path StepCache::start_attempt(const std::string& key) const {
  const fs::path work = stages_ / ".work";
  std::error_code ec;
  if (fs::is_directory(work, ec))
    for (const auto& entry : fs::directory_iterator(work, ec))
      if (entry.path().filename().string().starts_with(key + "-")) fs::remove_all(entry.path(), ec);
  return make_unique_directory(work, key + "-");
}

std::vector<Artifact> StepCache::commit(const Attempt& attempt) const {
  const fs::path final_dir = stages_ / attempt.key;
  std::vector<Artifact> outputs;
  for (Artifact artifact : attempt.emitted) {
    artifact.producer = attempt.stage.name;
    if (!artifact.path.empty()) {
      const fs::path source =
          artifact.path.is_absolute() ? artifact.path : attempt.work_dir / artifact.path;
      if (!fs::is_regular_file(source))
        throw StageError(fmt::format("output '{}' names {}, which is not a file", artifact.name,
                                     source.string()));
      if (artifact.path.is_absolute() && !inside(artifact.path, root_))
        throw StageError(fmt::format("output '{}' lies outside the registry: {}", artifact.name,
                                     artifact.path.string()));
      if (artifact.content_id.empty()) artifact.content_id = sha256_file(source);
      artifact.path = artifact.path.is_absolute() ? artifact.path : final_dir / artifact.path;
    } else if (artifact.content_id.empty()) {
      artifact.content_id = sha256_hex(artifact.meta.dump());
    }
    outputs.push_back(std::move(artifact));
  }

  json manifest = {
      {"format", kManifestFormat},
      {"key", attempt.key},
      {"stage", attempt.stage.name},
      {"type", attempt.stage.type->name},
      {"plugin",
       {{"name", attempt.stage.plugin->name}, {"version", attempt.stage.plugin->version}}},
      {"params", attempt.stage.params.values()},
      {"inputs", json::array()},
      {"outputs", json::array()},
      {"run_id", attempt.run_id},
      {"finished", iso8601_utc()},
      {"seconds", attempt.seconds}};
  for (const auto& input : attempt.inputs)
    manifest["inputs"].push_back({{"producer", input.producer},
                                  {"kind", input.kind},
                                  {"name", input.name},
                                  {"content_id", input.content_id}});
  for (const auto& output : outputs) manifest["outputs"].push_back(artifact_to_json(output, root_));
  write_file_atomic(attempt.work_dir / "manifest.json", manifest.dump(2) + "\n");

  publish(attempt.work_dir, final_dir, attempt.replace);
  fsync_directory(stages_);
  return outputs;
}

}  // namespace kiln
