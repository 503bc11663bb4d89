// The HDF5 file of a dataset version, format "kiln-dataset-1":
//
//   /<name>   one HDF5 dataset per Array, of the Array's shape, in the little-endian
//             HDF5 type of its dtype (u8 H5T_STD_U8LE, i32 H5T_STD_I32LE, f32
//             H5T_IEEE_F32LE, ...; f16 is IEEE half, as numpy's float16); chunked
//             along the first axis, deflate level 4, preceded by the shuffle filter
//             for multi-byte types.
//   attributes of the root group, each a scalar variable-length UTF-8 string:
//     kiln.format   "kiln-dataset-1"
//     kiln.id       the content id (64 hex digits), see content_id()
//     kiln.name     the human name given to DatasetStore::put
//     kiln.created  creation time, ISO 8601 UTC with milliseconds
//     kiln.parent   id of the version this one was derived from, or ""
//     kiln.source   JSON text describing the inputs (files and their SHA-256)
//   attribute of each array's dataset:
//     kiln.sha256   SHA-256 (hex) of the array's bytes, C order, little-endian;
//                   lets `kiln data verify` name the array that changed
//
// Any HDF5 reader opens it: h5py gives f["x"][...] and f.attrs["kiln.id"].
#include "data/dataset_file.h"
#include "data/hdf5_reader_process.h"

#include <kiln/checked_size.h>
#include <kiln/error.h>
#include <kiln/hash.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <new>

namespace kiln::data {
namespace fs = std::filesystem;
using detail::describe_dataset;
using detail::open_file;
using detail::read_array_infos;
using hdf5::check;
using hdf5::check_status;
using hdf5::Handle;

namespace {

constexpr const char* kFormat = detail::kDatasetFormat;
std::string link_name(hid_t group, hsize_t index, const fs::path& path) {
  const auto read_name = [&](char* buffer, std::size_t size) {
    const ssize_t length = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, index, buffer,
                                              size, H5P_DEFAULT);
    if (length < 0) hdf5::fail(path, "cannot list the arrays");
    return static_cast<std::size_t>(length);
  };
  std::string name(read_name(nullptr, 0), '\0');
  read_name(name.data(), name.size() + 1);
  return name;
}

nlohmann::json parse_source(const std::string& text, const fs::path& path) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& error) {
    throw DataError(
        fmt::format("{}: attribute kiln.source is not JSON: {}", path.string(), error.what()));
  }
}

// The names of the datasets under the root group, whatever their types: the list
// an error about a missing array shows.
std::string array_names(hid_t file, const fs::path& path) {
  H5G_info_t group{};
  check_status(H5Gget_info(file, &group), path, "cannot list the arrays");
  std::vector<std::string> names;
  for (hsize_t index = 0; index < group.nlinks; ++index) {
    const std::string name = link_name(file, index, path);
    H5O_info_t info{};
    if (H5Oget_info_by_name2(file, name.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 &&
        info.type == H5O_TYPE_DATASET)
      names.push_back(name);
  }
  return names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "));
}

std::vector<std::uint8_t> allocate_bytes(const ArrayInfo& info, const fs::path& path) {
  const std::uint64_t size = hdf5::check_declared_size(path, info.name, info.shape, info.dtype);
  try {
    return std::vector<std::uint8_t>(size);
  } catch (const std::exception&) {  // std::length_error or std::bad_alloc
    throw DataError(
        fmt::format("{}: array '{}' declares shape [{}], {} bytes, more than fits "
                    "in memory",
                    path.string(), info.name, fmt::join(info.shape, ", "), size));
  }
}

}  // namespace

Handle detail::open_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw DataError(fmt::format("{}: {}", path.string(),
                                fs::exists(path, ec) ? "not a regular file" : "no such file"));
  hdf5::check_in_reader_process(path);
  const Handle access = hdf5::file_access(path);
  return Handle(check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, access.get()), path,
                      "cannot open as an HDF5 file"),
                H5Fclose);
}

std::vector<std::int64_t> detail::read_shape(hid_t dataset, std::string_view name, DType dtype,
                                             const fs::path& path) {
  const std::string what = fmt::format("cannot read the shape of array '{}'", name);
  const Handle space(check(H5Dget_space(dataset), path, what), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) hdf5::fail(path, what);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  check_status(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), path, what);
  const std::string where = fmt::format("{}: array '{}'", path.string(), name);
  std::vector<std::int64_t> shape;
  for (const hsize_t extent : dims) {
    if (extent > static_cast<hsize_t>(kMaxDeclaredBytes))
      throw DataError(fmt::format("{}: extent {} is impossibly large", where, extent));
    shape.push_back(static_cast<std::int64_t>(extent));
  }
  checked_bytes(shape, static_cast<std::int64_t>(size_of(dtype)), where);
  return shape;
}

ArrayInfo detail::describe_dataset(hid_t dataset, const std::string& name, const fs::path& path) {
  const Handle type(
      check(H5Dget_type(dataset), path, fmt::format("cannot read the type of array '{}'", name)),
      H5Tclose);
  ArrayInfo info;
  info.name = name;
  info.dtype = hdf5::dtype_of(type.get(), path, name);
  info.shape = read_shape(dataset, name, info.dtype, path);
  return info;
}

std::vector<ArrayInfo> detail::read_array_infos(hid_t file, const fs::path& path) {
  H5G_info_t group{};
  check_status(H5Gget_info(file, &group), path, "cannot list the arrays");
  std::vector<ArrayInfo> arrays;
  for (hsize_t index = 0; index < group.nlinks; ++index) {
    const std::string name = link_name(file, index, path);
    const Handle object(
        check(H5Oopen(file, name.c_str(), H5P_DEFAULT), path, "cannot open /" + name), H5Oclose);
    if (H5Iget_type(object.get()) == H5I_DATASET)
      arrays.push_back(describe_dataset(object.get(), name, path));
  }
  return arrays;
}

DatasetVersion read_dataset_info(const fs::path& file) {
  hdf5::silence_errors();
  const fs::path path = fs::absolute(file);
  const Handle handle = open_file(path);
  const hid_t root = handle.get();
  if (H5Aexists(root, "kiln.format") <= 0)
    throw DataError(path.string() + ": not a kiln dataset (no kiln.format attribute)");
  const std::string format = hdf5::read_string_attribute(root, "kiln.format", path);
  if (format != kFormat)
    throw DataError(fmt::format("{}: unsupported dataset format '{}' (this kiln reads '{}')",
                                path.string(), format, kFormat));
  DatasetVersion version;
  version.id = hdf5::read_string_attribute(root, "kiln.id", path);
  version.name = hdf5::read_string_attribute(root, "kiln.name", path);
  version.created = hdf5::read_string_attribute(root, "kiln.created", path);
  version.parent = hdf5::read_string_attribute(root, "kiln.parent", path);
  version.source = parse_source(hdf5::read_string_attribute(root, "kiln.source", path), path);
  version.arrays = read_array_infos(root, path);
  version.file = path;
  return version;
}

std::int64_t detail::row_bytes(const ArrayInfo& info) {
  std::int64_t bytes = static_cast<std::int64_t>(size_of(info.dtype));
  for (std::size_t axis = 1; axis < info.shape.size(); ++axis) bytes *= info.shape[axis];
  return bytes;
}

Handle detail::open_array(hid_t file, const std::string& name, const fs::path& path) {
  const bool plain_name = !name.empty() && name.find('/') == std::string::npos && name != ".";
  if (!plain_name || H5Lexists(file, name.c_str(), H5P_DEFAULT) <= 0)
    throw DataError(fmt::format("{}: no array named '{}' (arrays: {})", path.string(), name,
                                array_names(file, path)));
  return Handle(check(H5Dopen2(file, name.c_str(), H5P_DEFAULT), path, "cannot open array " + name),
                H5Dclose);
}

void detail::read_rows(hid_t dataset, hid_t memory_type, const ArrayInfo& info, std::int64_t first,
                       std::int64_t count, std::uint8_t* out, const fs::path& path) {
  const std::string what =
      fmt::format("cannot read rows {}..{} of array '{}'", first, first + count - 1, info.name);
  const Handle file_space(check(H5Dget_space(dataset), path, what), H5Sclose);
  std::vector<hsize_t> start(info.shape.size(), 0);
  std::vector<hsize_t> extent(info.shape.begin(), info.shape.end());
  if (!extent.empty()) {
    start.front() = static_cast<hsize_t>(first);
    extent.front() = static_cast<hsize_t>(count);
    check_status(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr,
                                     extent.data(), nullptr),
                 path, what);
  }
  const Handle memory_space(check(extent.empty() ? H5Screate(H5S_SCALAR)
                                                 : H5Screate_simple(static_cast<int>(extent.size()),
                                                                    extent.data(), nullptr),
                                  path, what),
                            H5Sclose);
  check_status(
      H5Dread(dataset, memory_type, memory_space.get(), file_space.get(), H5P_DEFAULT, out), path,
      what);
}

Array read_array(const fs::path& file, const std::string& name) {
  hdf5::silence_errors();
  const Handle handle = open_file(file);
  const Handle dataset = detail::open_array(handle.get(), name, file);
  const ArrayInfo info = describe_dataset(dataset.get(), name, file);
  Array array;
  array.name = name;
  array.dtype = info.dtype;
  array.shape = info.shape;
  array.bytes = allocate_bytes(info, file);
  if (!array.bytes.empty()) {
    const Handle type = hdf5::type_of(array.dtype);
    check_status(
        H5Dread(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, array.bytes.data()), file,
        fmt::format("cannot read array '{}'", name));
  }
  return array;
}

}  // namespace kiln::data
