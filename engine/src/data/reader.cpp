// DatasetReader: one open HDF5 file and its root datasets, read by hyperslab.
#include <kiln/data/reader.h>
#include <kiln/error.h>

#include "data/dataset_file.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace kiln::data {
namespace fs = std::filesystem;
using hdf5::check;
using hdf5::Handle;

struct DatasetReader::State {
  fs::path file;
  Handle handle;
  std::vector<ArrayInfo> arrays;
  std::vector<Handle> datasets;  // parallel to arrays
  std::vector<Handle> memory_types;
  std::vector<std::int64_t> chunk_rows;
};

namespace {

std::int64_t chunk_rows_of(hid_t dataset, const ArrayInfo& info, const fs::path& file) {
  const Handle properties(check(H5Dget_create_plist(dataset), file, "cannot read chunking"),
                          H5Pclose);
  const std::int64_t rows = info.shape.empty() ? 1 : info.shape.front();
  if (H5Pget_layout(properties.get()) != H5D_CHUNKED) return std::max<std::int64_t>(rows, 1);
  std::vector<hsize_t> chunk(std::max<std::size_t>(info.shape.size(), 1));
  if (H5Pget_chunk(properties.get(), static_cast<int>(chunk.size()), chunk.data()) < 0)
    hdf5::fail(file, fmt::format("cannot read the chunk shape of '{}'", info.name));
  return static_cast<std::int64_t>(std::max<hsize_t>(chunk.front(), 1));
}

}  // namespace

DatasetReader::DatasetReader(fs::path file) : state_(std::make_unique<State>()) {
  hdf5::silence_errors();
  state_->file = fs::absolute(file);
  state_->handle = detail::open_file(state_->file);
  state_->arrays = detail::read_array_infos(state_->handle.get(), state_->file);
  for (const ArrayInfo& info : state_->arrays) {
    Handle dataset(check(H5Dopen2(state_->handle.get(), info.name.c_str(), H5P_DEFAULT),
                         state_->file, "cannot open array " + info.name),
                   H5Dclose);
    state_->chunk_rows.push_back(chunk_rows_of(dataset.get(), info, state_->file));
    state_->memory_types.push_back(hdf5::type_of(info.dtype));
    state_->datasets.push_back(std::move(dataset));
  }
}

DatasetReader::~DatasetReader() = default;
DatasetReader::DatasetReader(DatasetReader&&) noexcept = default;
DatasetReader& DatasetReader::operator=(DatasetReader&&) noexcept = default;

const fs::path& DatasetReader::file() const noexcept { return state_->file; }
const std::vector<ArrayInfo>& DatasetReader::arrays() const noexcept { return state_->arrays; }

namespace {

std::size_t index_of(const std::vector<ArrayInfo>& arrays, std::string_view name,
                     const fs::path& file) {
  for (std::size_t i = 0; i < arrays.size(); ++i)
    if (arrays[i].name == name) return i;
  std::vector<std::string> names;
  for (const ArrayInfo& info : arrays) names.push_back(info.name);
  throw DataError(fmt::format("{}: no array named '{}' (arrays: {})", file.string(), name,
                              names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
}

}  // namespace

const ArrayInfo& DatasetReader::array(std::string_view name) const {
  return state_->arrays[index_of(state_->arrays, name, state_->file)];
}

std::int64_t DatasetReader::chunk_rows(std::string_view name) const {
  return state_->chunk_rows[index_of(state_->arrays, name, state_->file)];
}

std::int64_t DatasetReader::row_bytes(std::string_view name) const {
  return detail::row_bytes(array(name));
}

void DatasetReader::read_rows(std::string_view name, std::int64_t first, std::int64_t count,
                              std::uint8_t* out) const {
  hdf5::silence_errors();
  const std::size_t index = index_of(state_->arrays, name, state_->file);
  const ArrayInfo& info = state_->arrays[index];
  const std::int64_t rows = info.shape.empty() ? 1 : info.shape.front();
  if (first < 0 || count < 0 || first + count > rows)
    throw InternalError(fmt::format("{}: rows [{}, {}) of '{}' are outside its {} rows",
                                    state_->file.string(), first, first + count, name, rows));
  if (count == 0) return;
  detail::read_rows(state_->datasets[index].get(), state_->memory_types[index].get(), info, first,
                    count, out, state_->file);
}

std::string DatasetReader::recorded_sha256(std::string_view name) const {
  const std::size_t index = index_of(state_->arrays, name, state_->file);
  const hid_t dataset = state_->datasets[index].get();
  if (H5Aexists(dataset, detail::kArraySha256Attribute) <= 0) return {};
  return hdf5::read_string_attribute(dataset, detail::kArraySha256Attribute, state_->file);
}

void for_each_block(
    const DatasetReader& reader, std::string_view name,
    const std::function<void(std::int64_t, std::int64_t, const std::uint8_t*)>& visit,
    std::int64_t block_bytes) {
  const ArrayInfo& info = reader.array(name);
  const std::int64_t rows = info.shape.empty() ? 1 : info.shape.front();
  const std::int64_t row_bytes = std::max<std::int64_t>(reader.row_bytes(name), 1);
  const std::int64_t chunk = reader.chunk_rows(name);
  // Whole chunks, as many as fit the block (at least one).
  const std::int64_t block_rows =
      std::max<std::int64_t>(block_bytes / row_bytes / chunk, 1) * chunk;
  std::vector<std::uint8_t> buffer(
      static_cast<std::size_t>(std::min(block_rows, std::max<std::int64_t>(rows, 1)) * row_bytes));
  for (std::int64_t first = 0; first < rows; first += block_rows) {
    const std::int64_t count = std::min(block_rows, rows - first);
    reader.read_rows(name, first, count, buffer.data());
    visit(first, count, buffer.data());
  }
}

}  // namespace kiln::data
