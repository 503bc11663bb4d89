// The `register` stage: copies the trained model (safetensors) and a model card
// into the run's artifacts, registers them as a new version of a registered model
// in the MLflow-layout registry, and points an alias (default "champion") at it
// when evaluation let the model through. A model the gate refused (evaluate with
// on_fail: register) is registered all the same, for the record, but the alias
// stays where it was and the stage fails with the gate-failure exit code.
#include <kiln/clock.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/plugin.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/registry/names.h>
#include <kiln/version.h>

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <optional>

namespace {

using kiln::ParamType;
namespace fs = std::filesystem;

std::string architecture_text(const nlohmann::json& architecture) {
  if (architecture.value("type", "") != "mlp") return architecture.dump();
  std::string widths = std::to_string(architecture.value("inputs", 0));
  for (const auto& width : architecture.value("hidden", nlohmann::json::array()))
    widths += "-" + width.dump();
  return fmt::format("MLP {}-{} (ReLU)", widths, architecture.value("outputs", 0));
}

// `gate`: the version's tags, for the gate's verdict.
std::string model_card(const std::string& name, const kiln::Artifact& model,
                       const kiln::Artifact* metrics, const std::string& run_id,
                       const std::map<std::string, std::string>& gate) {
  std::string card = fmt::format("# {}\n\n", name);
  card += fmt::format("- architecture: {}\n",
                      architecture_text(model.meta.value("architecture", nlohmann::json())));
  card += fmt::format("- weights: model.safetensors, sha256 {}\n", model.content_id);
  card += fmt::format("- trained on dataset version {} by run {}\n",
                      model.meta.value("dataset_id", "?"), model.meta.value("train_run_id", "?"));
  if (metrics != nullptr)
    card += fmt::format(
        "- evaluated on dataset version {}: accuracy {:.4f}, macro-F1 {:.4f}, loss {:.4f}\n",
        metrics->meta.value("dataset_id", "?"), metrics->meta.value("accuracy", 0.0),
        metrics->meta.value("macro_f1", 0.0), metrics->meta.value("loss", 0.0));
  if (const auto verdict = gate.find("kiln.gate");
      verdict != gate.end() && verdict->second != "none")
    card +=
        fmt::format("- gate: {}{}\n", verdict->second,
                    gate.contains("kiln.gate.reasons") ? ": " + gate.at("kiln.gate.reasons") : "");
  card += fmt::format("- registered by run {} at {} with kiln {}\n", run_id, kiln::iso8601_utc(),
                      KILN_VERSION);
  return card;
}

// What evaluation decided: "passed", "refused" (with reasons) or "none" (no gate,
// or no evaluate stage upstream).
struct GateVerdict {
  std::string state = "none";
  std::string reasons;
  bool refused() const { return state == "refused"; }
};

GateVerdict gate_verdict(const kiln::Artifact* metrics) {
  GateVerdict verdict;
  if (metrics == nullptr || !metrics->meta.contains("gate")) return verdict;
  const nlohmann::json& gate = metrics->meta["gate"];
  if (gate.value("checks", nlohmann::json::array()).empty()) return verdict;
  verdict.state = gate.value("passed", true) ? "passed" : "refused";
  std::vector<std::string> reasons;
  for (const auto& reason : gate.value("reasons", nlohmann::json::array()))
    reasons.push_back(reason.get<std::string>());
  verdict.reasons = fmt::format("{}", fmt::join(reasons, "; "));
  return verdict;
}

// Lineage and evaluation, for people and for the next evaluation's champion check
// (kiln.test_dataset, kiln.eval.<metric>).
std::map<std::string, std::string> version_tags(const kiln::Artifact& model,
                                                const kiln::Artifact* metrics,
                                                const GateVerdict& gate) {
  std::map<std::string, std::string> tags = {
      {"kiln.model_sha256", model.content_id},
      {"kiln.train_dataset", model.meta.value("dataset_id", "")},
      {"kiln.train_run_id", model.meta.value("train_run_id", "")},
      {"kiln.gate", gate.state},
  };
  if (!gate.reasons.empty()) tags["kiln.gate.reasons"] = gate.reasons;
  if (metrics != nullptr) {
    tags["kiln.metrics_sha256"] = metrics->content_id;
    tags["kiln.test_dataset"] = metrics->meta.value("dataset_id", "");
    for (const char* name : {"accuracy", "macro_f1", "loss"})
      tags[fmt::format("kiln.eval.{}", name)] = fmt::format("{}", metrics->meta.value(name, 0.0));
  }
  return tags;
}

// A version already registered for this refused model and evaluation: the stage
// did not commit (it failed), so running the pipeline again runs it again, and
// that must not add the same refused model twice.
std::optional<std::int64_t> refused_before(const kiln::registry::MlflowStore& store,
                                           const std::string& name,
                                           const std::map<std::string, std::string>& tags) {
  const std::vector<std::string> models = store.list_models();
  if (std::find(models.begin(), models.end(), name) == models.end()) return std::nullopt;
  for (const auto& version : store.list_versions(name)) {
    const auto same = [&](const char* key) {
      const auto mine = tags.find(key), theirs = version.tags.find(key);
      return mine != tags.end() && theirs != version.tags.end() && mine->second == theirs->second;
    };
    if (same("kiln.gate") && same("kiln.model_sha256") && same("kiln.metrics_sha256"))
      return version.version;
  }
  return std::nullopt;
}

std::string alias_state(const kiln::registry::MlflowStore& store, const std::string& name,
                        const std::string& alias) {
  if (alias.empty()) return "no alias to move";
  const auto holder = store.alias_version(name, alias);
  return holder ? fmt::format("alias '{}' stays on version {}", alias, *holder)
                : fmt::format("alias '{}' not set", alias);
}

std::int64_t register_version(kiln::StageContext& context, const std::string& name,
                              const std::map<std::string, std::string>& tags) {
  const kiln::Artifact& model = context.input("model");
  kiln::RunLog& run = context.run();
  const fs::path model_dir = run.artifact_dir() / "model";
  fs::create_directories(model_dir);
  fs::copy_file(model.path, model_dir / "model.safetensors", fs::copy_options::overwrite_existing);
  kiln::write_file_atomic(
      model_dir / "README.md",
      model_card(name, model, context.find_input("metrics"), run.run_id(), tags));
  kiln::registry::MlflowStore store(context.registry_root());
  const std::int64_t version =
      store.create_model_version(name, run.run_id(), kiln::registry::file_uri(model_dir),
                                 context.params().get_string("description"), tags);
  run.set_tag("kiln.registered_model", fmt::format("{} version {}", name, version));
  return version;
}

[[noreturn]] void refuse(kiln::StageContext& context, const std::string& name,
                         const std::map<std::string, std::string>& tags, const GateVerdict& gate) {
  const kiln::registry::MlflowStore store(context.registry_root());
  std::string done;
  if (const auto earlier = refused_before(store, name, tags)) {
    done = fmt::format("registered before as {} version {}", name, *earlier);
  } else {
    done = fmt::format("registered as {} version {}", name, register_version(context, name, tags));
  }
  const std::string alias = context.params().get_string("alias");
  throw kiln::GateError(fmt::format("gate refused the model: {}; {}, {}", gate.reasons, done,
                                    alias_state(store, name, alias)));
}

void run_register(kiln::StageContext& context) {
  const kiln::Params& params = context.params();
  const std::string name = params.get_string("model_name");
  const std::string alias = params.get_string("alias");
  const kiln::Artifact& model = context.input("model");
  const kiln::Artifact* metrics = context.find_input("metrics");
  const GateVerdict gate = gate_verdict(metrics);
  const auto tags = version_tags(model, metrics, gate);
  if (gate.refused()) refuse(context, name, tags, gate);

  const std::int64_t version = register_version(context, name, tags);
  if (!alias.empty())
    kiln::registry::MlflowStore(context.registry_root()).set_alias(name, alias, version);
  const std::string summary =
      fmt::format("{} version {}{}", name, version, alias.empty() ? "" : " (" + alias + ")");
  kiln::log::info("register: {}", summary);
  context.emit({.name = "model_version",
                .kind = "model_version",
                .meta = {{"model", name},
                         {"version", version},
                         {"alias", alias},
                         {"run_id", context.run().run_id()},
                         {"summary", summary}}});
}

void check_register(const kiln::Params& params) {
  try {
    kiln::registry::validate_model_name(params.get_string("model_name"));
  } catch (const kiln::ConfigError& e) {
    params.fail("model_name", e.what());
  }
  if (const std::string alias = params.get_string("alias"); !alias.empty()) {
    try {
      kiln::registry::validate_alias(alias);
    } catch (const kiln::ConfigError& e) {
      params.fail("alias", e.what());
    }
  }
}

void register_stages(kiln::StageRegistrar& registrar) {
  registrar.add(
      {.name = "register",
       .summary = "Register the model as a new version in the registry, with an alias",
       .params = kiln::ParamSchema()
                     .required("model_name", ParamType::String, "registered model name")
                     .optional("alias", ParamType::String, "champion",
                               "alias moved to the new version; empty for none")
                     .optional("description", ParamType::String, "", "version description"),
       .consumes = {"model", "metrics"},
       .produces = {"model_version"},
       .check = check_register,
       .run = run_register});
}

}  // namespace

KILN_PLUGIN("register", "0.1.0", register_stages)
