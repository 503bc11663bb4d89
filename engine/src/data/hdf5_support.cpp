#include "data/hdf5_support.h"

#include <kiln/checked_size.h>
#include <kiln/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <utility>

namespace kiln::data::hdf5 {
namespace fs = std::filesystem;

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = std::exchange(other.id_, -1);
    closer_ = other.closer_;
  }
  return *this;
}

bool Handle::close() noexcept {
  if (id_ < 0) return true;
  const herr_t status = closer_(std::exchange(id_, -1));
  return status >= 0;
}

void Handle::reset() noexcept { close(); }

void silence_errors() noexcept { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

namespace {

// Walking downward visits the API call first and the innermost cause last; the
// innermost one says what is actually wrong ("truncated file: eof = ...").
herr_t keep_innermost(unsigned, const H5E_error2_t* error, void* data) {
  if (error->desc != nullptr && error->desc[0] != '\0')
    *static_cast<std::string*>(data) = error->desc;
  return 0;
}

std::string innermost_error() {
  std::string message;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, keep_innermost, &message);
  H5Eclear2(H5E_DEFAULT);
  return message;
}

Handle float_type(std::size_t spos, std::size_t epos, std::size_t esize, std::size_t msize,
                  std::size_t ebias) {
  Handle type(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
  // Fields first, while they still fit in 32 bits; then shrink to two bytes.
  if (type.get() < 0 || H5Tset_fields(type.get(), spos, epos, esize, 0, msize) < 0 ||
      H5Tset_size(type.get(), 2) < 0 || H5Tset_ebias(type.get(), ebias) < 0)
    throw InternalError("HDF5: cannot build a 16-bit float type: " + innermost_error());
  return type;
}

Handle copy_type(hid_t type) {
  Handle copy(H5Tcopy(type), H5Tclose);
  if (copy.get() < 0) throw InternalError("HDF5: cannot copy a predefined type");
  return copy;
}

Handle string_type(std::size_t size) {
  Handle type = copy_type(H5T_C_S1);
  if (H5Tset_size(type.get(), size) < 0 || H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0)
    throw InternalError("HDF5: cannot build a string type");
  return type;
}

}  // namespace

void fail(const fs::path& file, std::string_view what) {
  const std::string cause = innermost_error();
  if (cause.empty()) throw DataError(fmt::format("{}: {}", file.string(), what));
  throw DataError(fmt::format("{}: {} (HDF5: {})", file.string(), what, cause));
}

hid_t check(hid_t id, const fs::path& file, std::string_view what) {
  if (id < 0) fail(file, what);
  return id;
}

void check_status(herr_t status, const fs::path& file, std::string_view what) {
  if (status < 0) fail(file, what);
}

Handle file_access(const fs::path& file) {
  Handle properties(check(H5Pcreate(H5P_FILE_ACCESS), file, "cannot create file-access properties"),
                    H5Pclose);
  check_status(H5Pset_file_locking(properties.get(), false, true), file,
               "cannot turn off HDF5 file locking");
  return properties;
}

Handle type_of(DType dtype) {
  switch (dtype) {
    case DType::U8:
      return copy_type(H5T_STD_U8LE);
    case DType::I8:
      return copy_type(H5T_STD_I8LE);
    case DType::I16:
      return copy_type(H5T_STD_I16LE);
    case DType::I32:
      return copy_type(H5T_STD_I32LE);
    case DType::I64:
      return copy_type(H5T_STD_I64LE);
    case DType::F32:
      return copy_type(H5T_IEEE_F32LE);
    case DType::F64:
      return copy_type(H5T_IEEE_F64LE);
    case DType::F16:
      return float_type(15, 10, 5, 10, 15);  // what numpy/h5py read as float16
    case DType::BF16:
      return float_type(15, 7, 8, 7, 127);
  }
  throw InternalError("unknown dtype");
}

DType dtype_of(hid_t type, const fs::path& file, std::string_view array) {
  const H5T_class_t type_class = H5Tget_class(type);
  const std::size_t size = H5Tget_size(type);
  if (type_class == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    if (!is_signed && size == 1) return DType::U8;
    if (is_signed && size == 1) return DType::I8;
    if (is_signed && size == 2) return DType::I16;
    if (is_signed && size == 4) return DType::I32;
    if (is_signed && size == 8) return DType::I64;
  } else if (type_class == H5T_FLOAT) {
    std::size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
    H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize);
    if (size == 4) return DType::F32;
    if (size == 8) return DType::F64;
    if (size == 2 && esize == 5) return DType::F16;
    if (size == 2 && esize == 8) return DType::BF16;
  }
  throw DataError(
      fmt::format("{}: array '{}' has an HDF5 element type kiln does not read "
                  "(class {}, {} bytes)",
                  file.string(), array, static_cast<int>(type_class), size));
}

std::uint64_t import_memory_budget() {
  if (const char* text = std::getenv("KILN_IMPORT_MEMORY_BUDGET"); text != nullptr) {
    const std::string_view value(text);
    std::uint64_t bytes = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), bytes);
    if (error != std::errc() || end != value.data() + value.size() || bytes == 0)
      throw ConfigError(fmt::format(
          "KILN_IMPORT_MEMORY_BUDGET '{}': expected a positive number of bytes", value));
    return bytes;
  }
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return std::uint64_t{1} << 34;  // 16 GiB, if unknown
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size) / 2;
}

std::uint64_t check_declared_size(const fs::path& file, std::string_view array,
                                  std::span<const std::int64_t> shape, DType dtype) {
  // deflate's largest ratio is 1032:1 (zlib technical details); shuffle and
  // HDF5's other filters do not expand further.
  constexpr std::uint64_t kMaxCompressionRatio = 1032;
  const std::string where = fmt::format("{}: array '{}'", file.string(), array);
  const auto declared = static_cast<std::uint64_t>(
      checked_bytes(shape, static_cast<std::int64_t>(size_of(dtype)), where));
  std::error_code ec;
  const std::uintmax_t file_size = fs::file_size(file, ec);
  if (ec) return declared;  // the open that follows reports the file
  const std::uint64_t budget = import_memory_budget();
  if (declared <= file_size * kMaxCompressionRatio || declared <= budget) return declared;
  throw DataError(fmt::format(
      "{} declares shape [{}] of {}, {} bytes, but the file holds {} bytes (deflate expands at "
      "most {}-fold) and the memory budget is {} bytes (KILN_IMPORT_MEMORY_BUDGET): refusing to "
      "allocate it",
      where, fmt::join(shape, ", "), name_of(dtype), declared, file_size, kMaxCompressionRatio,
      budget));
}

void write_string_attribute(hid_t object, const char* name, std::string_view value,
                            const fs::path& file) {
  const Handle type = string_type(H5T_VARIABLE);
  const Handle space(check(H5Screate(H5S_SCALAR), file, "cannot create a dataspace"), H5Sclose);
  const std::string what = fmt::format("cannot write attribute {}", name);
  const Handle attribute(
      check(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), file,
            what),
      H5Aclose);
  const std::string text(value);
  const char* pointer = text.c_str();
  check_status(H5Awrite(attribute.get(), type.get(), &pointer), file, what);
}

namespace {

std::string read_variable_string(hid_t attribute, const fs::path& file, const std::string& what) {
  const Handle type = string_type(H5T_VARIABLE);
  char* text = nullptr;
  check_status(H5Aread(attribute, type.get(), &text), file, what);
  std::string value = text != nullptr ? text : "";
  H5free_memory(text);
  return value;
}

std::string read_fixed_string(hid_t attribute, std::size_t size, const fs::path& file,
                              const std::string& what) {
  // One byte more than stored, so a null-padded string that fills its size keeps
  // its last character when converted to a null-terminated one.
  const Handle type = string_type(size + 1);
  std::string value(size + 1, '\0');
  check_status(H5Aread(attribute, type.get(), value.data()), file, what);
  if (const auto end = value.find('\0'); end != std::string::npos) value.resize(end);
  return value;
}

}  // namespace

std::string read_string_attribute(hid_t object, const char* name, const fs::path& file) {
  const std::string what = fmt::format("cannot read attribute {}", name);
  const htri_t exists = H5Aexists(object, name);
  check_status(exists, file, what);
  if (exists == 0) throw DataError(fmt::format("{}: attribute {} is missing", file.string(), name));
  const Handle attribute(check(H5Aopen(object, name, H5P_DEFAULT), file, what), H5Aclose);
  const Handle stored(check(H5Aget_type(attribute.get()), file, what), H5Tclose);
  const Handle space(check(H5Aget_space(attribute.get()), file, what), H5Sclose);
  if (H5Tget_class(stored.get()) != H5T_STRING || H5Sget_simple_extent_npoints(space.get()) != 1)
    throw DataError(fmt::format("{}: attribute {} is not a single string", file.string(), name));
  if (H5Tis_variable_str(stored.get()) > 0)
    return read_variable_string(attribute.get(), file, what);
  return read_fixed_string(attribute.get(), H5Tget_size(stored.get()), file, what);
}

}  // namespace kiln::data::hdf5
