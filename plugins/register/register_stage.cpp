// The `register` stage: copies the trained model (safetensors) and a model card
// into the run's artifacts, registers them as a new version of a registered model
// in the MLflow-layout registry, and points an alias (default "champion") at it.
// It runs only when evaluation let the model through (a refused gate stops the
// pipeline before it).
#include <kiln/clock.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/plugin.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/registry/names.h>
#include <kiln/version.h>

#include <fmt/format.h>

#include <filesystem>

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

std::string model_card(const std::string& name, const kiln::Artifact& model,
                       const kiln::Artifact* metrics, const std::string& run_id) {
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
  card += fmt::format("- registered by run {} at {} with kiln {}\n", run_id, kiln::iso8601_utc(),
                      KILN_VERSION);
  return card;
}

std::map<std::string, std::string> version_tags(const kiln::Artifact& model,
                                                const kiln::Artifact* metrics) {
  std::map<std::string, std::string> tags = {
      {"kiln.model_sha256", model.content_id},
      {"kiln.train_dataset", model.meta.value("dataset_id", "")},
      {"kiln.train_run_id", model.meta.value("train_run_id", "")},
  };
  if (metrics != nullptr) {
    tags["kiln.test_dataset"] = metrics->meta.value("dataset_id", "");
    for (const char* name : {"accuracy", "macro_f1", "loss"})
      tags[fmt::format("kiln.eval.{}", name)] = fmt::format("{}", metrics->meta.value(name, 0.0));
  }
  return tags;
}

void run_register(kiln::StageContext& context) {
  const kiln::Params& params = context.params();
  const std::string name = params.get_string("model_name");
  const std::string alias = params.get_string("alias");
  const kiln::Artifact& model = context.input("model");
  const kiln::Artifact* metrics = context.find_input("metrics");

  kiln::RunLog& run = context.run();
  const fs::path model_dir = run.artifact_dir() / "model";
  fs::create_directories(model_dir);
  fs::copy_file(model.path, model_dir / "model.safetensors", fs::copy_options::overwrite_existing);
  kiln::write_file_atomic(model_dir / "README.md", model_card(name, model, metrics, run.run_id()));

  kiln::registry::MlflowStore store(context.registry_root());
  const std::int64_t version =
      store.create_model_version(name, run.run_id(), kiln::registry::file_uri(model_dir),
                                 params.get_string("description"), version_tags(model, metrics));
  if (!alias.empty()) store.set_alias(name, alias, version);
  run.set_tag("kiln.registered_model", fmt::format("{} version {}", name, version));
  const std::string summary =
      fmt::format("{} version {}{}", name, version, alias.empty() ? "" : " (" + alias + ")");
  kiln::log::info("register: {}", summary);
  context.emit({.name = "model_version",
                .kind = "model_version",
                .meta = {{"model", name},
                         {"version", version},
                         {"alias", alias},
                         {"run_id", run.run_id()},
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
