// Source files to arrays "x" (and "y"): format detection, per-format readers, the
// pairing checks, and the record of where the data came from.
#include <kiln/data/csv.h>
#include <kiln/data/idx.h>
#include <kiln/data/import.h>
#include <kiln/data/npy.h>
#include <kiln/data/npz.h>
#include <kiln/error.h>
#include <kiln/hash.h>

#include "data/byte_source.h"
#include "data/hdf5_reader_process.h"
#include "data/hdf5_source.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>

namespace kiln::data {
namespace fs = std::filesystem;

namespace {

constexpr std::array<std::pair<SourceFormat, std::string_view>, 6> kFormatNames{{
    {SourceFormat::Auto, "auto"},
    {SourceFormat::Idx, "idx"},
    {SourceFormat::Csv, "csv"},
    {SourceFormat::Npy, "npy"},
    {SourceFormat::Npz, "npz"},
    {SourceFormat::Hdf5, "hdf5"},
}};

struct SourceFile {
  fs::path path;
  SourceFormat format = SourceFormat::Auto;
};

nlohmann::json file_record(const SourceFile& file, std::string_view role) {
  return {{"path", file.path.string()},
          {"sha256", sha256_file(file.path)},
          {"format", name_of(file.format)},
          {"role", role}};
}

Array read_array_file(const SourceFile& file) {
  return file.format == SourceFormat::Idx ? read_idx(file.path) : read_npy(file.path);
}

void check_labels(const Array& x, const Array& y, const SourceFile& x_file,
                  const SourceFile& y_file) {
  if (y.shape.size() != 1 || !is_integer(y.dtype))
    throw DataError(
        fmt::format("{}: labels must be one integer per row (rank 1), got shape [{}] "
                    "of {}",
                    y_file.path.string(), fmt::join(y.shape, ", "), name_of(y.dtype)));
  if (x.rows() != y.rows())
    throw DataError(fmt::format("{} has {} rows but {} has {}: data and labels must agree",
                                x_file.path.string(), x.rows(), y_file.path.string(), y.rows()));
}

ImportedData read_array_files(const std::vector<SourceFile>& files) {
  ImportedData data;
  data.source["files"] = nlohmann::json::array();
  Array x = read_array_file(files[0]);
  x.name = "x";
  data.source["files"].push_back(file_record(files[0], "x"));
  if (files.size() == 2) {
    Array y = read_array_file(files[1]);
    check_labels(x, y, files[0], files[1]);
    y.name = "y";
    data.source["files"].push_back(file_record(files[1], "y"));
    data.arrays.push_back(std::move(y));
  }
  data.arrays.insert(data.arrays.begin(), std::move(x));
  return data;
}

char csv_delimiter(const std::string& text) {
  if (text == "tab" || text == "\\t") return '\t';
  if (text.size() != 1)
    throw ConfigError(
        fmt::format("import: delimiter '{}' is not one character (or \"tab\")", text));
  return text.front();
}

ImportedData read_csv_file(const SourceFile& file, const ImportOptions& options) {
  const CsvOptions csv{.delimiter = csv_delimiter(options.delimiter),
                       .header = options.header,
                       .label_column = options.label_column,
                       .feature_columns = options.feature_columns,
                       .ignored_columns = options.ignored_columns,
                       .categorical_columns = options.categorical_columns};
  CsvTable table = read_csv(file.path, csv);
  ImportedData data;
  data.source["files"] = {file_record(file, "table")};
  data.source["label_column"] = csv.label_column;
  data.source["feature_columns"] = table.feature_columns;
  data.source["ignored_columns"] = csv.ignored_columns;
  data.source["delimiter"] = std::string(1, csv.delimiter);
  data.source["header"] = csv.header;
  // Missing cells per feature column that has any, for the stage that imputes them
  // (columns of the same name add up).
  std::map<std::string, std::int64_t> missing;
  for (std::size_t i = 0; i < table.missing.size(); ++i)
    if (table.missing[i] > 0) missing[table.feature_columns[i]] += table.missing[i];
  data.source["missing"] = missing;
  if (!table.categories.empty()) data.source["categories"] = table.categories;
  data.arrays.push_back(std::move(table.x));
  if (!table.y.name.empty()) data.arrays.push_back(std::move(table.y));
  return data;
}

ImportedData read_npz_file(const SourceFile& file, const std::vector<std::string>& entries) {
  const std::vector<ArrayChoice> choices = parse_array_choices(entries);
  ImportedData data;
  data.source["files"] = {file_record(file, "arrays")};
  data.source["arrays"] = nlohmann::json::object();
  for (NpzArray& read : read_npz(file.path, choices)) {
    data.source["arrays"][read.array.name] = read.member;
    data.arrays.push_back(std::move(read.array));
  }
  return data;
}

// The arrays of ImportOptions::arrays as HDF5 paths, in the order given, and the
// source record naming the file and each array's path.
struct Hdf5Plan {
  std::vector<hdf5::ArraySpec> arrays;
  nlohmann::json source;

  // As kiln-hdf5-reader takes them: NAME=PATH.
  std::vector<std::string> specs() const {
    std::vector<std::string> specs;
    for (const hdf5::ArraySpec& spec : arrays) specs.push_back(hdf5::format_array_spec(spec));
    return specs;
  }
};

Hdf5Plan plan_hdf5(const SourceFile& file, const std::vector<std::string>& entries) {
  Hdf5Plan plan{hdf5::array_specs(entries), {}};
  nlohmann::json arrays = nlohmann::json::object();
  for (const hdf5::ArraySpec& spec : plan.arrays) arrays[spec.name] = spec.path;
  plan.source["files"] = {file_record(file, "arrays")};
  plan.source["arrays"] = arrays;
  plan.source["format"] = name_of(SourceFormat::Hdf5);
  return plan;
}

// Read in kiln-hdf5-reader: an imported file is someone else's, and a damaged one
// can crash libhdf5.
ImportedData read_hdf5_file(const SourceFile& file, const std::vector<std::string>& entries) {
  Hdf5Plan plan = plan_hdf5(file, entries);
  hdf5::SourceArrays read = hdf5::read_arrays_in_reader_process(file.path, plan.specs());
  if (!read.converted.empty()) plan.source["converted_from"] = read.converted;
  return {std::move(read.arrays), std::move(plan.source)};
}

// Arrays from kiln-hdf5-reader straight into the version's file.
class WriterSink : public hdf5::ArraySink {
 public:
  explicit WriterSink(DatasetWriter& writer) : writer_(writer) {}
  void begin_array(const ArrayInfo& info) override { writer_.begin_array(info); }
  void write(const std::uint8_t* bytes, std::size_t size) override { writer_.write(bytes, size); }

 private:
  DatasetWriter& writer_;
};

// An HDF5 import streams, block by block, in bounded memory whatever the arrays'
// size: the writer takes the arrays in name order.
DatasetVersion import_hdf5(DatasetStore& store, const SourceFile& file,
                           const ImportOptions& options, const std::string& parent) {
  Hdf5Plan plan = plan_hdf5(file, options.arrays);
  std::sort(plan.arrays.begin(), plan.arrays.end(),
            [](const hdf5::ArraySpec& a, const hdf5::ArraySpec& b) { return a.name < b.name; });
  DatasetWriter writer(store, options.name, plan.source, parent);
  WriterSink sink(writer);
  const auto converted = hdf5::stream_arrays_in_reader_process(file.path, plan.specs(), sink);
  if (!converted.empty()) writer.source()["converted_from"] = converted;
  return writer.finish();
}

std::vector<SourceFile> resolve_formats(const ImportOptions& options) {
  if (options.sources.empty()) throw ConfigError("import: no source files given");
  std::vector<SourceFile> files;
  for (const fs::path& path : options.sources) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
      throw DataError(fmt::format("{}: {}", path.string(),
                                  fs::exists(path, ec) ? "not a regular file" : "no such file"));
    const fs::path absolute = fs::absolute(path).lexically_normal();
    files.push_back({absolute, options.format == SourceFormat::Auto ? detect_format(absolute)
                                                                    : options.format});
  }
  return files;
}

// The format a file's name suggests (a damaged file's content may not): .npy,
// .h5/.hdf5, .csv/.txt, and IDX's .idx or "-ubyte" names; ".gz" looked through.
std::optional<SourceFormat> format_from_name(const fs::path& file) {
  fs::path name = file.filename();
  if (name.extension() == ".gz") name = name.stem();
  const std::string extension = name.extension().string();
  const std::string stem = name.stem().string();
  if (extension == ".npy") return SourceFormat::Npy;
  if (extension == ".npz") return SourceFormat::Npz;
  if (extension == ".h5" || extension == ".hdf5") return SourceFormat::Hdf5;
  if (extension == ".csv" || extension == ".txt") return SourceFormat::Csv;
  if (extension == ".idx" || name.string().ends_with("-ubyte") ||
      stem.find("idx") != std::string::npos)
    return SourceFormat::Idx;
  return std::nullopt;
}

void check_arrangement(const std::vector<SourceFile>& files) {
  for (const SourceFile& file : files) {
    const bool alone = file.format == SourceFormat::Csv || file.format == SourceFormat::Npz ||
                       file.format == SourceFormat::Hdf5;
    if (alone && files.size() != 1)
      throw ConfigError(fmt::format(
          "import: a {} source is imported on its own, but {} files "
          "were given ({} is {})",
          name_of(file.format), files.size(), file.path.string(), name_of(file.format)));
  }
  if (files.size() > 2)
    throw ConfigError(
        fmt::format("import: {} files given; IDX and NPY take one (data) or two "
                    "(data, then labels)",
                    files.size()));
}

// Options of one format given for another would be silently ignored: refused.
void check_options_fit(const ImportOptions& options, const SourceFile& file) {
  const ImportOptions defaults;
  std::vector<std::string> csv_options;
  const auto set = [&](bool differs, const char* name) {
    if (differs) csv_options.emplace_back(name);
  };
  set(options.label_column != defaults.label_column, "label_column (--label)");
  set(options.delimiter != defaults.delimiter, "delimiter (--delimiter)");
  set(options.header != defaults.header, "header (--no-header)");
  set(!options.feature_columns.empty(), "feature_columns (--features)");
  set(!options.ignored_columns.empty(), "ignored_columns (--ignored)");
  set(!options.categorical_columns.empty(), "categorical_columns (--categorical)");
  if (file.format != SourceFormat::Csv && !csv_options.empty())
    throw ConfigError(fmt::format(
        "import: {} appl{} to CSV tables only; {} is {}", fmt::join(csv_options, ", "),
        csv_options.size() == 1 ? "ies" : "y", file.path.string(), name_of(file.format)));
  if (file.format != SourceFormat::Npz && file.format != SourceFormat::Hdf5 &&
      options.arrays != defaults.arrays)
    throw ConfigError(
        fmt::format("import: arrays (--arrays) applies to NPZ and HDF5 only; {} is {}",
                    file.path.string(), name_of(file.format)));
}

}  // namespace

std::string_view name_of(SourceFormat format) noexcept {
  for (const auto& [value, name] : kFormatNames)
    if (value == format) return name;
  return "auto";
}

std::optional<SourceFormat> source_format_from_name(std::string_view name) noexcept {
  for (const auto& [value, text] : kFormatNames)
    if (text == name) return value;
  return std::nullopt;
}

SourceFormat detect_format(const fs::path& file) {
  std::array<std::uint8_t, 8> head{};
  const std::size_t got = detail::open_source(file)->read(head.data(), head.size());
  const std::string_view text(reinterpret_cast<const char*>(head.data()), got);
  if (text.starts_with("\x93NUMPY")) return SourceFormat::Npy;
  // A zip's first local file header, or the end record of an empty archive.
  if (text.starts_with("PK\x03\x04") || text.starts_with("PK\x05\x06")) return SourceFormat::Npz;
  if (text == std::string_view("\x89HDF\r\n\x1a\n", 8)) return SourceFormat::Hdf5;
  if (got >= 4 && head[0] == 0 && head[1] == 0) return SourceFormat::Idx;
  if (const auto by_name = format_from_name(file)) return *by_name;
  if (std::all_of(text.begin(), text.end(), [](unsigned char c) {
        return c == '\t' || c == '\n' || c == '\r' || (c >= 0x20 && c < 0x7f);
      }))
    return SourceFormat::Csv;
  throw DataError(
      fmt::format("{}: cannot tell its format from the content or the name; set the "
                  "format explicitly (idx, csv, npy, npz or hdf5)",
                  file.string()));
}

ImportedData read_sources(const ImportOptions& options) {
  const std::vector<SourceFile> files = resolve_formats(options);
  check_arrangement(files);
  check_options_fit(options, files.front());
  ImportedData data;
  switch (files.front().format) {
    case SourceFormat::Csv:
      data = read_csv_file(files.front(), options);
      break;
    case SourceFormat::Npz:
      data = read_npz_file(files.front(), options.arrays);
      break;
    case SourceFormat::Hdf5:
      data = read_hdf5_file(files.front(), options.arrays);
      break;
    default:
      data = read_array_files(files);
  }
  data.source["format"] = name_of(files.front().format);
  return data;
}

DatasetVersion import_dataset(DatasetStore& store, const ImportOptions& options) {
  if (options.name.empty()) throw ConfigError("import: the dataset version needs a name");
  std::string parent;
  if (!options.parent.empty()) {
    const auto found = store.find(options.parent);
    if (!found)
      throw ConfigError(fmt::format("import: parent '{}' is not a stored dataset version in {}",
                                    options.parent, store.directory().string()));
    parent = found->id;
  }
  const std::vector<SourceFile> files = resolve_formats(options);
  check_arrangement(files);
  if (files.front().format == SourceFormat::Hdf5)
    return import_hdf5(store, files.front(), options, parent);
  const ImportedData data = read_sources(options);
  return store.put(options.name, data.arrays, data.source, parent);
}

}  // namespace kiln::data
