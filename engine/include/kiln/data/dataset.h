// Dataset versions: immutable, content-addressed HDF5 files under
// <registry>/datasets/<id>.h5. The id is the SHA-256 of the arrays' contents in
// canonical order (see content_id), not of the file's bytes, so the same data
// imported twice gets the same id. Layout and attributes: docs/formats.md.
#pragma once

#include <kiln/data/array.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kiln::data {

struct ArrayInfo {
  std::string name;
  DType dtype = DType::U8;
  std::vector<std::int64_t> shape;
};

struct DatasetVersion {
  std::string id;       // 64 hex digits
  std::string name;     // human name, e.g. "fashion-mnist-train"
  std::string created;  // ISO 8601 UTC
  std::string parent;   // id of the version it was derived from, or empty
  nlohmann::json source = nlohmann::json::object();  // e.g. files and their SHA-256
  std::vector<ArrayInfo> arrays;
  std::filesystem::path file;  // absolute path of the .h5 file

  // Rows of the first array (all arrays of a version agree); 0 without arrays.
  std::int64_t rows() const {
    return arrays.empty() || arrays.front().shape.empty() ? 0 : arrays.front().shape.front();
  }
};

// The names behind a CSV import's categorical codes, source["categories"] (column
// name -> its sorted category names, kiln/data/csv.h); an empty object when the
// version has none.
nlohmann::json categories_of(const nlohmann::json& source);

// SHA-256 over the arrays sorted by name; for each: name, dtype name, rank, each
// dimension as u64 little-endian, then the raw bytes (length-prefixed fields). When
// `source` has "categories" (a CSV import's categorical columns: the names behind
// the codes in x), then "kiln.categories" and their JSON text as two more fields.
std::string content_id(const std::vector<Array>& arrays,
                       const nlohmann::json& source = nlohmann::json::object());

class DatasetStore {
 public:
  explicit DatasetStore(std::filesystem::path registry_root);

  // Writes a new version (chunked, deflate-compressed HDF5, written to a temporary
  // file and renamed into place). If a version with the same id exists it is kept
  // and returned unchanged. Arrays must agree on their number of rows.
  DatasetVersion put(const std::string& name, const std::vector<Array>& arrays,
                     const nlohmann::json& source, const std::string& parent = "");

  // By full id, unique id prefix (>= 8 hex digits), or name (the newest version of
  // that name). std::nullopt when nothing matches.
  std::optional<DatasetVersion> find(const std::string& id_or_name) const;
  std::vector<DatasetVersion> list() const;

  const std::filesystem::path& directory() const noexcept { return directory_; }

 private:
  std::filesystem::path directory_;
};

// Writes a new version of `store` array by array and block by block, in bounded
// memory (a few MiB of buffer whatever the arrays' size): what an import of data
// larger than memory uses, and what put() does for arrays in memory. Arrays come in
// name order, each with all its bytes before the next; the content id is computed
// as the bytes pass. Nothing is visible in the store before finish(); a writer
// destroyed unfinished leaves nothing behind.
class DatasetWriter {
 public:
  DatasetWriter(const DatasetStore& store, std::string name, nlohmann::json source,
                std::string parent = "");
  ~DatasetWriter();
  DatasetWriter(const DatasetWriter&) = delete;
  DatasetWriter& operator=(const DatasetWriter&) = delete;

  // DataError for a name out of order, a bad name, no axes, or rows that differ
  // from the first array's.
  void begin_array(const ArrayInfo& info);
  // The next bytes of the current array, in any pieces.
  void write(const std::uint8_t* bytes, std::size_t size);
  // The version's source record, which may still change until finish().
  nlohmann::json& source() noexcept;
  // The stored version; if one with the same content id exists it is kept and
  // returned unchanged. DataError when an array got fewer bytes than its shape.
  DatasetVersion finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Reads a dataset version's metadata from its file.
DatasetVersion read_dataset_info(const std::filesystem::path& file);
// Reads one whole array of a dataset file (the streaming loader comes later).
Array read_array(const std::filesystem::path& file, const std::string& name);

}  // namespace kiln::data
