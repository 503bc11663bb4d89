// kiln registry ls / show / diff / promote / rollback / export-onnx: formatting over
// <kiln/registry/browse.h> and <kiln/onnx.h>; the logic lives in the engine.
#include "commands.h"

#include <kiln/clock.h>
#include <kiln/data/dataset.h>
#include <kiln/dtype.h>
#include <kiln/error.h>
#include <kiln/log.h>
#include <kiln/nn/model.h>
#include <kiln/onnx.h>
#include <kiln/registry/browse.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/registry/registry_root.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>

namespace kiln::cli {
namespace {

namespace reg = kiln::registry;

// The registry's store, with the runs of dead processes closed first (KILLED): what
// kiln registry shows is never a run that claims to run with no one running it.
reg::MlflowStore open_store(const GlobalOptions& global) {
  reg::check_registry_root(global.registry, reg::RootAccess::Read);
  reg::MlflowStore store(global.registry);
  try {
    store.close_dead_runs();
  } catch (const Error& error) {  // a registry this user may read but not write
    log::debug("registry {}: dead runs left as they are: {}", global.registry.string(),
               error.what());
  }
  return store;
}

std::string time_text(std::optional<std::int64_t> millis) {
  return millis ? iso8601_utc(*millis) : std::string("-");
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// Rows of cells printed as left-aligned columns, two spaces apart.
void print_columns(const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) {
      widths.resize(std::max(widths.size(), row.size()));
      widths[i] = std::max(widths[i], row[i].size());
    }
  for (const auto& row : rows) {
    std::string line = indent;
    for (std::size_t i = 0; i < row.size(); ++i)
      line += i + 1 < row.size() ? fmt::format("{:<{}}  ", row[i], widths[i]) : row[i];
    line.erase(line.find_last_not_of(' ') + 1);
    fmt::print("{}\n", line);
  }
}

void print_map(const std::string& title, const std::map<std::string, std::string>& entries) {
  fmt::print("\n{}:\n", title);
  std::vector<std::vector<std::string>> rows;
  for (const auto& [key, value] : entries) rows.push_back({key, value});
  if (rows.empty()) fmt::print("  (none)\n");
  print_columns(rows, "  ");
}

// --- ls ---------------------------------------------------------------------------

void list_runs(const reg::MlflowStore& store) {
  std::vector<std::vector<std::string>> rows = {
      {"run id", "experiment", "name", "status", "started (UTC)"}};
  for (const reg::RunListing& run : reg::list_all_runs(store))
    rows.push_back({run.info.run_id, run.experiment_name, run.info.run_name,
                    reg::to_string(run.info.status), time_text(run.info.start_time_ms)});
  print_columns(rows, "");
}

void list_models(const reg::MlflowStore& store) {
  std::vector<std::vector<std::string>> rows = {{"model", "versions", "latest", "aliases"}};
  for (const reg::ModelListing& model : reg::list_model_summaries(store)) {
    std::vector<std::string> aliases;
    for (const auto& [alias, version] : model.aliases)
      aliases.push_back(fmt::format("{}={}", alias, version));
    rows.push_back({model.name, std::to_string(model.versions),
                    model.latest > 0 ? std::to_string(model.latest) : "-",
                    aliases.empty() ? "-" : fmt::format("{}", fmt::join(aliases, ", "))});
  }
  print_columns(rows, "");
}

void list_datasets(const GlobalOptions& global) {
  std::vector<std::vector<std::string>> rows = {{"id", "name", "created", "arrays"}};
  for (const data::DatasetVersion& version : data::DatasetStore(global.registry).list()) {
    std::vector<std::string> arrays;
    for (const data::ArrayInfo& array : version.arrays)
      arrays.push_back(
          fmt::format("{} {} {}", array.name, name_of(array.dtype), shape_text(array.shape)));
    rows.push_back({version.id.substr(0, 12), version.name, version.created,
                    fmt::format("{}", fmt::join(arrays, ", "))});
  }
  print_columns(rows, "");
}

void list_registry(const GlobalOptions& global, const std::string& what) {
  const reg::MlflowStore store = open_store(global);
  const bool all = what.empty();
  if (all) fmt::print("runs:\n");
  if (all || what == "runs") list_runs(store);
  if (all) fmt::print("\nmodels:\n");
  if (all || what == "models") list_models(store);
  if (all) fmt::print("\ndatasets:\n");
  if (all || what == "datasets") list_datasets(global);
}

// --- show -------------------------------------------------------------------------

void show_run(const reg::RunSummary& run) {
  const reg::RunInfo& info = run.info;
  fmt::print("run {} ({})\nexperiment: {} ({})\nstatus: {}\nuser: {}\n", info.run_id, info.run_name,
             run.experiment_name, info.experiment_id, reg::to_string(info.status), info.user);
  fmt::print("started: {}\nended: {}\n", time_text(info.start_time_ms),
             time_text(info.end_time_ms));
  if (!info.parent_run_id.empty()) fmt::print("parent run: {}\n", info.parent_run_id);
  print_map("params", run.params);
  std::map<std::string, std::string> metrics;
  for (const auto& [key, point] : run.metrics)
    metrics[key] = fmt::format("{}  (step {})", reg::metric_text(point.value), point.step);
  print_map("metrics (final)", metrics);
  print_map("tags", run.tags);
  fmt::print("\nartifacts:\n");
  for (const std::string& artifact : run.artifacts) fmt::print("  {}\n", artifact);
}

void show_model(const reg::MlflowStore& store, const std::string& model) {
  fmt::print("model {}\n\n", model);
  std::vector<std::vector<std::string>> rows = {
      {"version", "created (UTC)", "run", "gate", "test accuracy", "aliases"}};
  for (const reg::ModelVersionInfo& version : store.list_versions(model)) {
    const auto tag = [&](const char* key) {
      const auto it = version.tags.find(key);
      return it == version.tags.end() ? std::string("-") : it->second;
    };
    rows.push_back(
        {std::to_string(version.version), time_text(version.creation_time_ms),
         version.run_id.empty() ? "-" : version.run_id, tag("kiln.gate"), tag("kiln.eval.accuracy"),
         version.aliases.empty() ? "-" : fmt::format("{}", fmt::join(version.aliases, ", "))});
  }
  print_columns(rows, "");
  fmt::print("\nalias history:\n");
  const std::vector<reg::AliasEvent> history = store.alias_history(model);
  if (history.empty()) fmt::print("  (none)\n");
  for (const reg::AliasEvent& event : history)
    fmt::print("  {}  {:<8}  {} -> {}  ({})\n", iso8601_utc(event.time_ms), event.action,
               event.alias, event.version,
               event.previous ? fmt::format("was {}", *event.previous) : "was unset");
}

void show_version(const reg::ModelVersionInfo& version) {
  // Read first: a malformed weights file is one error line, not half a listing.
  const std::optional<reg::ModelWeights> weights = reg::read_model_weights(version);
  fmt::print("model {} version {}\naliases: {}\nrun: {}\nsource: {}\ncreated: {}\n", version.model,
             version.version,
             version.aliases.empty() ? "-" : fmt::format("{}", fmt::join(version.aliases, ", ")),
             version.run_id.empty() ? "-" : version.run_id, version.source,
             time_text(version.creation_time_ms));
  if (!version.description.empty()) fmt::print("description: {}\n", version.description);
  print_map("tags", version.tags);
  if (!weights) {
    fmt::print("\nweights: not a local file ({})\n", version.source);
    return;
  }
  fmt::print("\nweights: {}\n", weights->file.string());
  std::vector<std::vector<std::string>> rows;
  for (const StoredTensor& tensor : weights->contents.tensors)
    rows.push_back(
        {tensor.name, std::string(safetensors_name(tensor.dtype)), shape_text(tensor.shape)});
  print_columns(rows, "  ");
  print_map("weights metadata", weights->contents.metadata);
}

void show(const GlobalOptions& global, const std::string& what) {
  const reg::MlflowStore store = open_store(global);
  if (what.find('@') == std::string::npos) {
    if (const auto run = reg::find_run(store, what)) return show_run(*run);
    const reg::ModelRef ref = reg::parse_model_ref(what);
    const auto models = store.list_models();
    if (std::find(models.begin(), models.end(), ref.model) == models.end())
      throw ConfigError(
          fmt::format("registry: no run or model '{}' in {}", what, global.registry.string()));
    return show_model(store, ref.model);
  }
  show_version(reg::resolve_model_ref(store, reg::parse_model_ref(what)));
}

// --- diff -------------------------------------------------------------------------

void print_diff_rows(const std::string& title, const std::vector<reg::DiffRow>& diff_rows,
                     const reg::RunDiff& diff) {
  fmt::print("\n{}:\n", title);
  std::vector<std::vector<std::string>> rows = {
      {"", diff.left.info.run_id.substr(0, 8), diff.right.info.run_id.substr(0, 8), ""}};
  for (const reg::DiffRow& row : diff_rows)
    rows.push_back(
        {row.key, row.left.value_or("-"), row.right.value_or("-"), row.differs() ? "*" : ""});
  print_columns(rows, "  ");
}

void diff(const GlobalOptions& global, const std::string& left, const std::string& right) {
  const reg::RunDiff result = reg::diff_runs(open_store(global), left, right);
  fmt::print("{}  {} ({}, {})\n{}  {} ({}, {})\n", result.left.info.run_id.substr(0, 8),
             result.left.info.run_id, result.left.info.run_name,
             reg::to_string(result.left.info.status), result.right.info.run_id.substr(0, 8),
             result.right.info.run_id, result.right.info.run_name,
             reg::to_string(result.right.info.status));
  print_diff_rows("params", result.params, result);
  print_diff_rows("metrics (final)", result.metrics, result);
}

// --- promote / rollback -----------------------------------------------------------

std::string holder_text(std::optional<std::int64_t> version) {
  return version ? fmt::format("version {}", *version) : std::string("unset");
}

void promote(const GlobalOptions& global, const std::string& model, std::int64_t version,
             const std::string& alias) {
  reg::MlflowStore store = open_store(global);
  const auto before = store.alias_version(model, alias);
  store.set_alias(model, alias, version);
  fmt::print("{}: alias '{}' -> version {} (was {})\n", model, alias, version, holder_text(before));
}

void rollback(const GlobalOptions& global, const std::string& model, const std::string& alias) {
  reg::MlflowStore store = open_store(global);
  const auto before = store.alias_version(model, alias);
  const std::int64_t version = store.rollback_alias(model, alias);
  fmt::print("{}: alias '{}' rolled back to version {} (was {})\n", model, alias, version,
             holder_text(before));
}

// --- export-onnx ------------------------------------------------------------------

// The version MODEL[@VERSION|@ALIAS] names; an unknown model is named as such, not
// as a model without versions.
reg::ModelVersionInfo find_version(const reg::MlflowStore& store, const GlobalOptions& global,
                                   const std::string& what) {
  const reg::ModelRef ref = reg::parse_model_ref(what);
  const auto models = store.list_models();
  if (std::find(models.begin(), models.end(), ref.model) == models.end())
    throw ConfigError(
        fmt::format("registry: no model '{}' in {}", ref.model, global.registry.string()));
  return reg::resolve_model_ref(store, ref);
}

void export_onnx(const GlobalOptions& global, const std::string& what,
                 std::filesystem::path output) {
  const reg::MlflowStore store = open_store(global);
  const reg::ModelVersionInfo version = find_version(store, global, what);
  const std::optional<std::filesystem::path> weights = reg::model_weights_file(version);
  if (!weights)
    throw ConfigError(fmt::format("registry: {} version {} has no local weights to export ({})",
                                  version.model, version.version, version.source));
  std::map<std::string, std::string> metadata;
  nn::Model model = nn::Model::load(*weights, Device::cpu(), &metadata);
  onnx::ExportOptions options;
  options.graph_name = fmt::format("{}-v{}", version.model, version.version);
  options.metadata = {{"kiln.model_name", version.model},
                      {"kiln.model_version", std::to_string(version.version)},
                      {"kiln.run_id", version.run_id}};
  // From the weights: the input's normalisation after pixels / 255 (docs/formats.md)
  // and the training data.
  for (const char* key : {"kiln.preprocess", "kiln.dataset"})
    if (const auto it = metadata.find(key); it != metadata.end())
      options.metadata.emplace_back(key, it->second);
  if (output.empty()) output = fmt::format("{}-v{}.onnx", version.model, version.version);
  const onnx::ExportedModel exported = onnx::write_model(output, model, options);
  fmt::print("{} version {} -> {} (ONNX opset {}, {} nodes, {} parameters, {} bytes)\n",
             version.model, version.version, output.string(), onnx::kOpsetVersion, exported.nodes,
             model.parameter_count(), exported.bytes.size());
}

// CLI11's own number checks print the type's whole range; say what a version is.
CLI::Validator version_number() {
  return CLI::Validator(
      [](std::string& text) {
        std::int64_t number = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
        if (error == std::errc() && end == text.data() + text.size() && number >= 1)
          return std::string();
        return "a version is a number >= 1, not '" + text + "'";
      },
      "VERSION");
}

struct RegistryArguments {
  std::string what;
  std::string model;
  std::string left;
  std::string right;
  std::int64_t version = 0;
  std::string alias = "champion";
  std::filesystem::path output;
};

}  // namespace

void add_registry_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<RegistryArguments>();
  CLI::App* registry =
      app.add_subcommand("registry", "Runs, models and datasets in the registry; aliases");
  registry->require_subcommand(1);

  CLI::App* ls = registry->add_subcommand("ls", "List runs, models or datasets (all by default)");
  ls->add_option("what", args->what, "runs, models or datasets")
      ->check(CLI::IsMember({"runs", "models", "datasets"}));
  ls->callback([args, &global] { list_registry(global, args->what); });

  CLI::App* show = registry->add_subcommand("show", "A run, a model, or one model version");
  show->add_option("what", args->what, "RUN id, MODEL, MODEL@VERSION or MODEL@ALIAS")->required();
  show->callback([args, &global] { kiln::cli::show(global, args->what); });

  CLI::App* diff = registry->add_subcommand("diff", "Params and final metrics of two runs");
  diff->add_option("left", args->left, "run id")->required();
  diff->add_option("right", args->right, "run id")->required();
  diff->callback([args, &global] { kiln::cli::diff(global, args->left, args->right); });

  CLI::App* promote = registry->add_subcommand("promote", "Point an alias at a model version");
  promote->add_option("model", args->model, "registered model name")->required();
  promote->add_option("version", args->version, "version number")
      ->required()
      ->check(version_number());
  promote->add_option("--alias", args->alias, "alias to move")->capture_default_str();
  promote->callback(
      [args, &global] { kiln::cli::promote(global, args->model, args->version, args->alias); });

  CLI::App* rollback =
      registry->add_subcommand("rollback", "Move an alias back to the version that held it before");
  rollback->add_option("model", args->model, "registered model name")->required();
  rollback->add_option("--alias", args->alias, "alias to move back")->capture_default_str();
  rollback->callback([args, &global] { kiln::cli::rollback(global, args->model, args->alias); });

  CLI::App* export_onnx = registry->add_subcommand(
      "export-onnx", "Write a model version as an ONNX file (onnxruntime and other runtimes)");
  export_onnx->add_option("what", args->what, "MODEL, MODEL@VERSION or MODEL@ALIAS (MODEL: latest)")
      ->required();
  export_onnx->add_option("-o,--output", args->output, "ONNX file (default MODEL-vVERSION.onnx)");
  export_onnx->callback(
      [args, &global] { kiln::cli::export_onnx(global, args->what, args->output); });
}

}  // namespace kiln::cli
