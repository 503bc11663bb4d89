// Stages "import" and "idx_import": source files -> a content-addressed dataset
// version (arrays x and, with labels, y), through kiln::data::import_dataset. All
// sources are read and checked before anything is written, so a bad input leaves
// the registry untouched. `idx_import` is the quickstart's original stage, kept
// with its parameters: an IDX images file and an IDX labels file.
#include <kiln/data/import.h>
#include <kiln/data/inspect.h>
#include <kiln/error.h>
#include <kiln/log.h>
#include <kiln/plugin.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <string>

namespace {

namespace fs = std::filesystem;
using kiln::data::DatasetVersion;
using kiln::data::ImportOptions;

nlohmann::json describe(const DatasetVersion& version) {
  nlohmann::json arrays = nlohmann::json::object();
  for (const auto& array : version.arrays)
    arrays[array.name] = {{"dtype", kiln::name_of(array.dtype)}, {"shape", array.shape}};
  const std::int64_t rows = version.rows();
  const auto classes = static_cast<std::int64_t>(kiln::data::class_counts(version).size());
  return {{"id", version.id},
          {"name", version.name},
          {"rows", rows},
          {"arrays", arrays},
          {"x_shape", arrays.contains("x") ? arrays["x"]["shape"] : nlohmann::json::array()},
          {"classes", classes},
          {"summary", fmt::format("{} {}: {} rows, {} classes", version.name,
                                  version.id.substr(0, 12), rows, classes)}};
}

void import_and_emit(kiln::StageContext& context, const ImportOptions& options) {
  context.progress().update(
      {.note = fmt::format("reading {}", options.sources.front().filename().string())});
  kiln::data::DatasetStore store(context.registry_root());
  const DatasetVersion version = kiln::data::import_dataset(store, options);
  const nlohmann::json meta = describe(version);
  context.emit({.name = "dataset",
                .kind = "dataset",
                .path = version.file,
                .content_id = version.id,
                .meta = meta});
  context.progress().finish();
  kiln::log::info("{}: dataset '{}' {} with {} rows, arrays {} -> {}", context.type(), version.name,
                  version.id.substr(0, 12), meta["rows"].get<std::int64_t>(), meta["arrays"].dump(),
                  version.file.string());
}

// `arrays`: a list of NAME or NAME=MEMBER, or a mapping NAME: MEMBER
// ({x: /train/images, y: /train/labels}); as ImportOptions::arrays entries.
std::vector<std::string> array_entries(const kiln::Params& params) {
  const nlohmann::json& arrays = params.get("arrays");
  std::vector<std::string> entries;
  if (arrays.is_array()) {
    for (const nlohmann::json& entry : arrays) {
      if (!entry.is_string())
        params.fail("arrays", "a list entry must be a string, NAME or NAME=MEMBER");
      entries.push_back(entry.get<std::string>());
    }
  } else if (arrays.is_object()) {
    for (const auto& [name, path] : arrays.items()) {
      if (!path.is_string())
        params.fail("arrays", fmt::format("the member of '{}' must be a string", name));
      entries.push_back(name + "=" + path.get<std::string>());
    }
  } else {
    params.fail("arrays", "must be a list (NAME or NAME=MEMBER) or a mapping NAME: MEMBER");
  }
  if (entries.empty()) params.fail("arrays", "names no array");
  return entries;
}

void check_import(const kiln::Params& params) { array_entries(params); }

void run_import(kiln::StageContext& context) {
  const kiln::Params& params = context.params();
  ImportOptions options;
  options.sources.push_back(params.get_path("source"));
  if (!params.get("labels").is_null()) options.sources.push_back(params.get_path("labels"));
  options.name = params.get_string("name");
  options.format = *kiln::data::source_format_from_name(params.get_string("format"));
  options.label_column = params.get_string("label_column");
  options.delimiter = params.get_string("delimiter");
  options.header = params.get_bool("header");
  options.feature_columns = params.get_string_list("feature_columns");
  options.ignored_columns = params.get_string_list("ignored_columns");
  options.categorical_columns = params.get_string_list("categorical_columns");
  options.arrays = array_entries(params);
  options.parent = params.get_string("parent");
  import_and_emit(context, options);
}

void run_idx_import(kiln::StageContext& context) {
  ImportOptions options;
  options.sources = {context.params().get_path("images"), context.params().get_path("labels")};
  options.name = context.params().get_string("name");
  options.format = kiln::data::SourceFormat::Idx;
  import_and_emit(context, options);
}

kiln::StageType import_type() {
  kiln::StageType type;
  type.name = "import";
  type.summary =
      "Import IDX, CSV, NPY, NPZ or HDF5 files as a versioned dataset with arrays x (and y)";
  type.params
      .required("source", kiln::ParamType::Path,
                "the data: IDX or NPY array (x), CSV table, NPZ archive or HDF5 file")
      .optional("labels", kiln::ParamType::Path, nullptr,
                "IDX or NPY labels (one integer per row) for an IDX or NPY source")
      .choice("format", {"auto", "idx", "csv", "npy", "npz", "hdf5"},
              "source format; auto detects it from the content")
      .optional("label_column", kiln::ParamType::String, "label",
                "CSV: the column holding the labels (\"\" for none)")
      .optional("delimiter", kiln::ParamType::String, ",",
                "CSV: the field delimiter, one character or \"tab\"")
      .optional("header", kiln::ParamType::Bool, true,
                "CSV: the first row names the columns; false: it is data, and columns are "
                "named by index \"0\", \"1\", ...")
      .optional("feature_columns", kiln::ParamType::StringList, nlohmann::json::array(),
                "CSV: the columns of x, in order; [] for every column but the label and the "
                "ignored ones")
      .optional("ignored_columns", kiln::ParamType::StringList, nlohmann::json::array(),
                "CSV: columns dropped without being read")
      .optional("categorical_columns", kiln::ParamType::StringList, nlohmann::json::array(),
                "CSV: feature columns of category names (text), stored as codes; train "
                "one-hot encodes them")
      .optional("arrays", kiln::ParamType::Object, nlohmann::json::array({"x", "y"}),
                "NPZ or HDF5: the arrays to copy, a list of NAME or NAME=MEMBER "
                "([x=images, y=labels]) or a mapping NAME: MEMBER; an HDF5 member is a "
                "path in the file ({x: /train/images, y: /train/labels})")
      .optional("name", kiln::ParamType::String, "dataset", "human name of the dataset version")
      .optional("parent", kiln::ParamType::String, "",
                "id, id prefix or name of the version this one derives from");
  type.produces = {"dataset"};
  type.run = run_import;
  type.check = check_import;
  return type;
}

kiln::StageType idx_import_type() {
  kiln::StageType type;
  type.name = "idx_import";
  type.summary =
      "Import an IDX images file and an IDX labels file (gzip or not) as a versioned dataset "
      "with arrays x and y";
  type.params
      .required("images", kiln::ParamType::Path,
                "IDX file of the inputs, e.g. train-images-idx3-ubyte.gz")
      .required("labels", kiln::ParamType::Path,
                "IDX file of the labels (rank 1), e.g. train-labels-idx1-ubyte.gz")
      .optional("name", kiln::ParamType::String, "dataset",
                "human name of the dataset version, e.g. fashion-mnist-train");
  type.produces = {"dataset"};
  type.run = run_idx_import;
  return type;
}

void register_stages(kiln::StageRegistrar& registrar) {
  registrar.add(import_type());
  registrar.add(idx_import_type());
}

}  // namespace

KILN_PLUGIN("idx_import", "0.2.0", register_stages)
