// .npy reader. Layout (numpy/lib/format.py): the magic "\x93NUMPY", a major and a
// minor version byte, the header length (u16 little-endian in version 1, u32 in 2
// and 3), then the header: a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 784), }
// padded with spaces and a newline; the raw data follows in the order it names.
#include <kiln/checked_size.h>
#include <kiln/data/npy.h>
#include <kiln/error.h>

#include "data/byte_source.h"
#include "data/npy_source.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <charconv>
#include <string_view>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;

// numpy itself refuses headers above 10000 bytes unless told otherwise; 64 KiB
// leaves room for odd writers and keeps an untrusted length from allocating much.
constexpr std::uint32_t kMaxHeaderBytes = 64 * 1024;
constexpr std::size_t kBlockBytes = std::size_t{1} << 20;

struct NpyType {
  std::string_view code;  // descr without its byte-order character
  DType dtype;
};

constexpr std::array<NpyType, 5> kTypes{{
    {"u1", DType::U8},
    {"i4", DType::I32},
    {"i8", DType::I64},
    {"f4", DType::F32},
    {"f8", DType::F64},
}};

[[noreturn]] void fail(std::string_view where, const std::string& what) {
  throw DataError(fmt::format("{}: {}", where, what));
}

void read_exactly(detail::ByteSource& source, std::uint8_t* out, std::size_t size,
                  std::string_view where, std::string_view what) {
  const std::size_t got = source.read(out, size);
  if (got < size) fail(where, fmt::format("{} is cut short ({} of {} bytes)", what, got, size));
}

std::string read_header_text(detail::ByteSource& source, std::string_view where) {
  std::array<std::uint8_t, 8> prefix{};
  read_exactly(source, prefix.data(), prefix.size(), where, "NPY preamble");
  if (std::string_view(reinterpret_cast<const char*>(prefix.data()), 6) != "\x93NUMPY")
    fail(where, "not an NPY file (the magic \\x93NUMPY is missing)");
  const std::uint8_t major = prefix[6];
  if (major < 1 || major > 3)
    fail(where, fmt::format("unsupported NPY format version {}.{} (kiln reads 1.0, 2.0, 3.0)",
                            major, prefix[7]));
  std::uint32_t length = 0;
  if (major == 1) {
    std::array<std::uint8_t, 2> bytes{};
    read_exactly(source, bytes.data(), bytes.size(), where, "NPY header length");
    length = bytes[0] | (bytes[1] << 8);
  } else {
    std::array<std::uint8_t, 4> bytes{};
    read_exactly(source, bytes.data(), bytes.size(), where, "NPY header length");
    length = bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (std::uint32_t{bytes[3]} << 24);
  }
  if (length > kMaxHeaderBytes)
    fail(where, fmt::format("NPY header of {} bytes is larger than the {} kiln accepts", length,
                            kMaxHeaderBytes));
  std::string text(length, '\0');
  read_exactly(source, reinterpret_cast<std::uint8_t*>(text.data()), length, where, "NPY header");
  return text;
}

// The text after "'key':" up to the next top-level delimiter, trimmed.
std::string_view dict_value(std::string_view header, std::string_view key, std::string_view where) {
  const std::string quoted = fmt::format("'{}'", key);
  std::size_t at = header.find(quoted);
  if (at == std::string_view::npos)
    fail(where, fmt::format("NPY header has no '{}': {}", key, header));
  at = header.find(':', at + quoted.size());
  if (at == std::string_view::npos) fail(where, fmt::format("NPY header is malformed: {}", header));
  std::string_view rest = header.substr(at + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest.empty()) fail(where, fmt::format("NPY header is malformed: {}", header));
  const std::size_t end = rest.front() == '(' ? rest.find(')') + 1 : rest.find_first_of(",}");
  if (end == std::string_view::npos || end == 0)
    fail(where, fmt::format("NPY header is malformed: {}", header));
  return rest.substr(0, end);
}

DType parse_descr(std::string_view value, std::string_view where) {
  if (value.size() < 4 || (value.front() != '\'' && value.front() != '"'))
    fail(where, fmt::format("NPY dtype {} is not a simple type string", value));
  const std::string_view descr = value.substr(1, value.size() - 2);
  const char order = descr.front();
  const std::string_view code = descr.substr(1);
  if (order == '>')
    fail(where, fmt::format("NPY dtype '{}' is big-endian; kiln reads little-endian data "
                            "(convert with a.astype(a.dtype.newbyteorder('<')))",
                            descr));
  for (const NpyType& type : kTypes)
    if (type.code == code && (order == '<' || order == '|' || order == '=')) return type.dtype;
  fail(where, fmt::format("NPY dtype '{}' is not one kiln reads (u1, i4, i8, f4, f8, "
                          "little-endian)",
                          descr));
}

std::vector<std::int64_t> parse_shape(std::string_view value, std::string_view where) {
  std::vector<std::int64_t> shape;
  std::string_view rest = value.substr(1, value.size() - 2);  // inside the parentheses
  while (!rest.empty()) {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == ',')) rest.remove_prefix(1);
    if (rest.empty()) break;
    std::int64_t extent = -1;
    const auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), extent);
    if (error != std::errc() || extent < 0)
      fail(where, fmt::format("NPY shape {} is malformed", value));
    shape.push_back(extent);
    rest.remove_prefix(static_cast<std::size_t>(end - rest.data()));
  }
  if (shape.empty()) fail(where, "NPY array is 0-dimensional; kiln needs at least one axis (rows)");
  return shape;
}

Array parse_header(std::string_view header, std::string_view where) {
  Array array;
  array.dtype = parse_descr(dict_value(header, "descr", where), where);
  const std::string_view fortran = dict_value(header, "fortran_order", where);
  if (fortran == "True")
    fail(where,
         "NPY array is in Fortran order; kiln reads C order (save "
         "np.ascontiguousarray(a))");
  if (fortran != "False") fail(where, fmt::format("NPY fortran_order {} is malformed", fortran));
  const std::string_view shape = dict_value(header, "shape", where);
  if (shape.front() != '(') fail(where, fmt::format("NPY shape {} is malformed", shape));
  array.shape = parse_shape(shape, where);
  return array;
}

std::uint64_t data_bytes(const Array& array, std::string_view where) {
  return static_cast<std::uint64_t>(checked_bytes(array.shape,
                                                  static_cast<std::int64_t>(size_of(array.dtype)),
                                                  fmt::format("{}: NPY header", where)));
}

void read_data(detail::ByteSource& source, Array& array, std::string_view where) {
  const std::uint64_t expected = data_bytes(array, where);
  while (array.bytes.size() < expected) {
    const std::size_t offset = array.bytes.size();
    const std::size_t block = std::min<std::uint64_t>(kBlockBytes, expected - offset);
    array.bytes.resize(offset + block);
    const std::size_t got = source.read(array.bytes.data() + offset, block);
    if (got < block)
      fail(where,
           fmt::format("NPY data too short: shape [{}] of {} needs {} bytes, {} follow",
                       fmt::join(array.shape, ", "), name_of(array.dtype), expected, offset + got));
  }
  std::uint8_t extra = 0;
  if (source.read(&extra, 1) > 0)
    fail(where, fmt::format("NPY data has trailing bytes after the {} that shape [{}] of {} needs",
                            expected, fmt::join(array.shape, ", "), name_of(array.dtype)));
}

}  // namespace

Array read_npy(const fs::path& path) {
  return detail::read_npy(*detail::open_source(path), path.string());
}

Array detail::read_npy(ByteSource& source, std::string_view where) {
  const std::string header = read_header_text(source, where);
  Array array = parse_header(header, where);
  read_data(source, array, where);
  return array;
}

}  // namespace kiln::data
