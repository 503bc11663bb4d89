// kiln data import / ls / show / verify / diff: dataset versions in
// <registry>/datasets, through kiln::data.
#include "commands.h"

#include <kiln/data/import.h>
#include <kiln/data/inspect.h>
#include <kiln/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;
using data::DatasetStore;
using data::DatasetVersion;

struct DataArguments {
  std::vector<std::string> sources;
  std::string name, format = "auto", label = "label", delimiter = ",", parent;
  bool no_header = false;
  std::vector<std::string> features, ignored, categorical;
  std::vector<std::string> arrays{"x", "y"};
  std::vector<std::string> versions;  // ID|NAME|FILE arguments
  bool json = false;
};

// A version by id, id prefix or name in the store, or a dataset file by path.
DatasetVersion resolve(const DatasetStore& store, const std::string& text) {
  std::error_code ec;
  if (text.find('/') != std::string::npos || fs::is_regular_file(text, ec)) {
    if (!fs::is_regular_file(text, ec))
      throw ConfigError(fmt::format("{}: no such dataset file", text));
    return data::read_dataset_info(text);
  }
  if (auto version = store.find(text)) return *version;
  throw ConfigError(fmt::format("no dataset version '{}' in {} (`kiln data ls` lists them)", text,
                                store.directory().string()));
}

std::string describe_arrays(const DatasetVersion& version) {
  std::vector<std::string> arrays;
  for (const auto& array : version.arrays)
    arrays.push_back(
        fmt::format("{} {} [{}]", array.name, name_of(array.dtype), fmt::join(array.shape, ", ")));
  return fmt::format("{}", fmt::join(arrays, ", "));
}

void import_command(const GlobalOptions& global, const DataArguments& arguments) {
  data::ImportOptions options;
  options.sources.assign(arguments.sources.begin(), arguments.sources.end());
  options.name = arguments.name;
  const auto format = data::source_format_from_name(arguments.format);
  if (!format)
    throw ConfigError(
        fmt::format("--format {}: expected auto, idx, csv, npy, npz or hdf5", arguments.format));
  options.format = *format;
  options.label_column = arguments.label;
  options.delimiter = arguments.delimiter;
  options.header = !arguments.no_header;
  options.feature_columns = arguments.features;
  options.ignored_columns = arguments.ignored;
  options.categorical_columns = arguments.categorical;
  options.arrays = arguments.arrays;
  options.parent = arguments.parent;
  DatasetStore store(global.registry);
  const DatasetVersion version = data::import_dataset(store, options);
  fmt::print("{} {}\n  arrays: {}\n  file: {}\n", version.id, version.name,
             describe_arrays(version), version.file.string());
}

void list_command(const GlobalOptions& global) {
  const auto versions = DatasetStore(global.registry).list();
  fmt::print("{:<12}  {:<24}  {:<24}  {:>9}  {}\n", "ID", "NAME", "CREATED", "ROWS", "ARRAYS");
  for (const DatasetVersion& version : versions)
    fmt::print("{:<12}  {:<24}  {:<24}  {:>9}  {}\n", version.id.substr(0, 12), version.name,
               version.created, version.rows(), describe_arrays(version));
}

void show_command(const GlobalOptions& global, const DataArguments& arguments) {
  const DatasetVersion version = resolve(DatasetStore(global.registry), arguments.versions.at(0));
  nlohmann::json arrays = nlohmann::json::object();
  for (const auto& array : version.arrays)
    arrays[array.name] = {{"dtype", name_of(array.dtype)}, {"shape", array.shape}};
  nlohmann::json json = {
      {"id", version.id},         {"name", version.name},          {"created", version.created},
      {"parent", version.parent}, {"file", version.file.string()}, {"rows", version.rows()},
      {"arrays", arrays},         {"source", version.source}};
  if (const auto counts = data::class_counts(version); !counts.empty())
    json["labels"] = data::label_counts_json(counts);
  if (arguments.json) {
    fmt::print("{}\n", json.dump(2));
    return;
  }
  fmt::print(
      "id:       {}\nname:     {}\ncreated:  {}\nparent:   {}\nfile:     {}\nrows:     {}\n"
      "arrays:   {}\nsource:   {}\n",
      version.id, version.name, version.created, version.parent.empty() ? "-" : version.parent,
      version.file.string(), version.rows(), describe_arrays(version), version.source.dump());
  if (json.contains("labels")) fmt::print("labels:   {}\n", json["labels"].dump());
}

void verify_command(const GlobalOptions& global, const DataArguments& arguments) {
  const DatasetVersion version = resolve(DatasetStore(global.registry), arguments.versions.at(0));
  const data::Verification result = data::verify_dataset(version.file);
  if (!result.ok())
    throw DataError(fmt::format("{}: dataset {} ({}) is damaged: {}", version.file.string(),
                                version.id.substr(0, 12), version.name, result.problem()));
  fmt::print("ok: {} ({}): {} arrays match the content id\n", version.id, version.name,
             result.arrays.size());
}

std::string describe_info(const std::optional<data::ArrayInfo>& info) {
  if (!info) return "-";
  return fmt::format("{} [{}]", name_of(info->dtype), fmt::join(info->shape, ", "));
}

void print_difference(const data::DatasetDifference& difference) {
  fmt::print("a: {} {} ({} rows)\nb: {} {} ({} rows)\n", difference.a.id.substr(0, 12),
             difference.a.name, difference.a.rows(), difference.b.id.substr(0, 12),
             difference.b.name, difference.b.rows());
  for (const auto& array : difference.arrays) {
    fmt::print("array {}: {} -> {}", array.name, describe_info(array.a), describe_info(array.b));
    if (array.changed_rows)
      fmt::print(", {} rows changed{}", *array.changed_rows,
                 array.first_changed.empty()
                     ? ""
                     : fmt::format(" (first: {})", fmt::join(array.first_changed, ", ")));
    fmt::print("\n");
  }
  if (!difference.labels_a.empty() || !difference.labels_b.empty()) {
    fmt::print("class balance (label: a -> b):\n");
    std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> classes;
    for (const auto& [label, count] : difference.labels_a) classes[label].first = count;
    for (const auto& [label, count] : difference.labels_b) classes[label].second = count;
    for (const auto& [label, counts] : classes)
      fmt::print("  {}: {} -> {} ({:+})\n", label, counts.first, counts.second,
                 counts.second - counts.first);
  }
  if (difference.changed_rows)
    fmt::print("rows changed: {} of {}\n", *difference.changed_rows, difference.a.rows());
  else
    fmt::print("rows changed: not compared (different row counts)\n");
}

void diff_command(const GlobalOptions& global, const DataArguments& arguments) {
  const DatasetStore store(global.registry);
  const auto difference = data::diff_datasets(resolve(store, arguments.versions.at(0)),
                                              resolve(store, arguments.versions.at(1)));
  if (arguments.json)
    fmt::print("{}\n", data::to_json(difference).dump(2));
  else
    print_difference(difference);
}

}  // namespace

void add_data_command(CLI::App& app, const GlobalOptions& global) {
  CLI::App* command =
      app.add_subcommand("data", "Dataset versions: import, list, show, verify, diff");
  command->require_subcommand(1);
  auto arguments = std::make_shared<DataArguments>();

  CLI::App* import = command->add_subcommand("import", "Import files as a new dataset version");
  import
      ->add_option("sources", arguments->sources,
                   "IDX or NPY data [and labels], a CSV table, an NPZ archive or an HDF5 file")
      ->required();
  import->add_option("--name", arguments->name, "Name of the version")->required();
  import->add_option("--format", arguments->format, "auto, idx, csv, npy, npz or hdf5")
      ->capture_default_str();
  import->add_option("--label", arguments->label, "CSV: the label column (\"\" for none)")
      ->capture_default_str();
  import->add_option("--delimiter", arguments->delimiter, "CSV: the field delimiter (or \"tab\")")
      ->capture_default_str();
  import->add_flag("--no-header", arguments->no_header,
                   "CSV: the first row is data; columns are named 0, 1, ...");
  import
      ->add_option("--features", arguments->features,
                   "CSV: the feature columns, in order (default: all but the label and ignored)")
      ->delimiter(',');
  import->add_option("--ignored", arguments->ignored, "CSV: columns to drop")->delimiter(',');
  import
      ->add_option("--categorical", arguments->categorical,
                   "CSV: feature columns of category names (train one-hot encodes them)")
      ->delimiter(',');
  import
      ->add_option("--arrays", arguments->arrays,
                   "NPZ or HDF5: the arrays to copy, NAME or NAME=MEMBER, comma-separated "
                   "(NPZ: x=images; HDF5: x=/train/images)")
      ->delimiter(',')
      ->capture_default_str();
  import->add_option("--parent", arguments->parent, "Version this one derives from (id or name)");
  import->callback([&global, arguments] { import_command(global, *arguments);
});

command->add_subcommand("ls", "List dataset versions, newest first")->callback([&global] {
  list_command(global);
});

CLI::App* show = command->add_subcommand("show", "A version's metadata, arrays and sources");
show->add_option("version", arguments->versions, "ID, id prefix, NAME or file")
    ->required()
    ->expected(1);
show->add_flag("--json", arguments->json, "Print JSON");
show->callback([&global, arguments] { show_command(global, *arguments); });

CLI::App* verify =
    command->add_subcommand("verify", "Re-hash a version's arrays and compare with its id");
verify->add_option("version", arguments->versions, "ID, id prefix, NAME or file")
    ->required()
    ->expected(1);
verify->callback([&global, arguments] { verify_command(global, *arguments); });

CLI::App* diff = command->add_subcommand("diff", "Compare two versions");
diff->add_option("versions", arguments->versions, "A B (ID, id prefix, NAME or file)")
    ->required()
    ->expected(2);
diff->add_flag("--json", arguments->json, "Print JSON");
diff->callback([&global, arguments] { diff_command(global, *arguments); });
}  // namespace kiln::cli

}  // namespace kiln::cli
