// IDX reader. The IDX header is: two zero bytes, a type code, a rank byte, then one
// big-endian u32 per dimension; the data follows in C order, big-endian. Input is
// read through a byte source (data/byte_source.h) so that plain and gzip files share
// one parser, and the gzip stream is inflated block by block instead of into a
// buffer sized from an untrusted header.
#include <kiln/checked_size.h>
#include <kiln/data/idx.h>
#include <kiln/error.h>

#include "data/byte_source.h"

#include <algorithm>
#include <array>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kBlockBytes = std::size_t{1} << 20;

using detail::ByteSource;

struct IdxType {
  std::uint8_t code;
  DType dtype;
};

constexpr std::array<IdxType, 6> kIdxTypes{{
    {0x08, DType::U8},
    {0x09, DType::I8},
    {0x0B, DType::I16},
    {0x0C, DType::I32},
    {0x0D, DType::F32},
    {0x0E, DType::F64},
}};

DType dtype_of_code(std::uint8_t code, const fs::path& path) {
  for (const auto& type : kIdxTypes)
    if (type.code == code) return type.dtype;
  throw DataError(fmt::format(
      "{}: unknown IDX type code 0x{:02x} (known: 0x08 u8, 0x09 i8, 0x0b i16, 0x0c i32, "
      "0x0d f32, 0x0e f64)",
      path.string(), code));
}

std::uint32_t big_endian_u32(const std::uint8_t* bytes) {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
         (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
}

struct IdxHeader {
  DType dtype = DType::U8;
  std::vector<std::int64_t> shape;
  std::uint64_t data_bytes = 0;
};

IdxHeader read_header(ByteSource& source, const fs::path& path) {
  std::array<std::uint8_t, 4> magic{};
  const std::size_t got = source.read(magic.data(), magic.size());
  if (got < magic.size())
    throw DataError(fmt::format("{}: too short for an IDX header ({} bytes)", path.string(), got));
  if (magic[0] != 0 || magic[1] != 0)
    throw DataError(fmt::format(
        "{}: not an IDX file (bad magic {:02x} {:02x} {:02x} {:02x}; expected two zero bytes, "
        "a type code and a rank)",
        path.string(), magic[0], magic[1], magic[2], magic[3]));
  IdxHeader header;
  header.dtype = dtype_of_code(magic[2], path);
  const std::size_t rank = magic[3];
  if (rank == 0) throw DataError(fmt::format("{}: IDX header declares rank 0", path.string()));

  std::vector<std::uint8_t> dims(4 * rank);
  const std::size_t dims_got = source.read(dims.data(), dims.size());
  if (dims_got < dims.size())
    throw DataError(fmt::format("{}: IDX header of rank {} is cut short ({} of {} bytes)",
                                path.string(), rank, 4 + dims_got, 4 + dims.size()));
  for (std::size_t axis = 0; axis < rank; ++axis)
    header.shape.push_back(big_endian_u32(dims.data() + 4 * axis));
  header.data_bytes = static_cast<std::uint64_t>(
      checked_bytes(header.shape, static_cast<std::int64_t>(size_of(header.dtype)),
                    fmt::format("{}: IDX header", path.string())));
  return header;
}

std::string describe(const IdxHeader& header) {
  return fmt::format("shape [{}] of {} ({} bytes of data)", fmt::join(header.shape, ", "),
                     name_of(header.dtype), header.data_bytes);
}

// Reads exactly the data the header declares, then makes sure nothing follows it.
std::vector<std::uint8_t> read_data(ByteSource& source, const IdxHeader& header,
                                    const fs::path& path) {
  std::vector<std::uint8_t> bytes;
  while (bytes.size() < header.data_bytes) {
    const std::size_t offset = bytes.size();
    const std::size_t block = std::min<std::uint64_t>(kBlockBytes, header.data_bytes - offset);
    bytes.resize(offset + block);
    const std::size_t got = source.read(bytes.data() + offset, block);
    if (got < block)
      throw DataError(fmt::format("{}: IDX data too short: header declares {} but only {} follow",
                                  path.string(), describe(header), offset + got));
  }
  std::uint64_t trailing = 0;
  std::array<std::uint8_t, 1 << 16> sink;
  for (std::size_t got; (got = source.read(sink.data(), sink.size())) > 0;) trailing += got;
  if (trailing > 0)
    throw DataError(fmt::format("{}: IDX data has trailing bytes: header declares {} but {} follow",
                                path.string(), describe(header), header.data_bytes + trailing));
  return bytes;
}

// IDX stores multi-byte elements big-endian; Array::bytes is little-endian.
void big_to_little_endian(std::vector<std::uint8_t>& bytes, std::size_t element_size) {
  if (element_size == 1) return;
  for (std::size_t at = 0; at + element_size <= bytes.size(); at += element_size)
    std::reverse(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                 bytes.begin() + static_cast<std::ptrdiff_t>(at + element_size));
}

}  // namespace

Array read_idx(const fs::path& path) {
  const auto source = detail::open_source(path);
  IdxHeader header = read_header(*source, path);
  Array array;
  array.dtype = header.dtype;
  array.bytes = read_data(*source, header, path);
  array.shape = std::move(header.shape);
  big_to_little_endian(array.bytes, size_of(array.dtype));
  return array;
}

}  // namespace kiln::data
