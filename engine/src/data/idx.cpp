// IDX reader. The IDX header is: two zero bytes, a type code, a rank byte, then one
// big-endian u32 per dimension; the data follows in C order, big-endian. Input is
// read through a small byte-source interface so that plain and gzip files share one
// parser, and the gzip stream is inflated block by block instead of into a buffer
// sized from an untrusted header.
#include <kiln/data/idx.h>
#include <kiln/error.h>

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kBlockBytes = std::size_t{1} << 20;

// Delivers the bytes of a file, in order; read() returns fewer bytes than asked
// only at the end of the data.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual std::size_t read(std::uint8_t* out, std::size_t size) = 0;
};

class FileSource final : public ByteSource {
 public:
  explicit FileSource(fs::path path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail("cannot open for reading");
  }
  ~FileSource() override { ::close(fd_); }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  std::size_t read(std::uint8_t* out, std::size_t size) override {
    std::size_t done = 0;
    while (done < size) {
      const ssize_t got = ::read(fd_, out + done, size - done);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) fail("cannot read");
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    return done;
  }

  // True when the file starts with the gzip magic 1f 8b (read without moving the
  // file offset).
  bool starts_with_gzip_magic() {
    std::array<std::uint8_t, 2> magic{};
    ssize_t got = -1;
    do {
      got = ::pread(fd_, magic.data(), magic.size(), 0);
    } while (got < 0 && errno == EINTR);
    if (got < 0) fail("cannot read");
    return got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  }

 private:
  [[noreturn]] void fail(std::string_view action) const {
    throw DataError(fmt::format("{}: {}: {}", path_.string(), action, std::strerror(errno)));
  }

  fs::path path_;
  int fd_ = -1;
};

// Inflates a gzip file (several concatenated members allowed, as gzip(1) writes
// for `cat a.gz b.gz`).
class GzipSource final : public ByteSource {
 public:
  GzipSource(fs::path path, std::unique_ptr<FileSource> file)
      : path_(std::move(path)), file_(std::move(file)), input_(kBlockBytes) {
    // 16 + MAX_WBITS: expect a gzip header and trailer rather than zlib's.
    if (inflateInit2(&stream_, 16 + MAX_WBITS) != Z_OK)
      throw InternalError("zlib: cannot initialise inflate");
  }
  ~GzipSource() override { inflateEnd(&stream_); }
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  std::size_t read(std::uint8_t* out, std::size_t size) override {
    size = std::min<std::size_t>(size, UINT_MAX);
    stream_.next_out = out;
    stream_.avail_out = static_cast<uInt>(size);
    while (stream_.avail_out > 0 && !finished_) {
      if (stream_.avail_in == 0 && !refill()) {
        if (between_members_) {
          finished_ = true;
          break;
        }
        throw DataError(fmt::format("{}: truncated gzip stream (ended after {} decompressed bytes)",
                                    path_.string(), delivered_ + (size - stream_.avail_out)));
      }
      if (between_members_) {
        inflateReset(&stream_);
        between_members_ = false;
      }
      const int rc = inflate(&stream_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        between_members_ = true;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        throw DataError(fmt::format("{}: corrupt gzip stream after {} decompressed bytes ({})",
                                    path_.string(), delivered_ + (size - stream_.avail_out),
                                    stream_.msg != nullptr ? stream_.msg : zError(rc)));
      }
    }
    const std::size_t produced = size - stream_.avail_out;
    delivered_ += produced;
    return produced;
  }

 private:
  bool refill() {
    const std::size_t got = file_->read(input_.data(), input_.size());
    stream_.next_in = input_.data();
    stream_.avail_in = static_cast<uInt>(got);
    return got > 0;
  }

  fs::path path_;
  std::unique_ptr<FileSource> file_;
  std::vector<std::uint8_t> input_;
  z_stream stream_{};
  std::uint64_t delivered_ = 0;
  bool between_members_ = false;  // the last member ended; more input starts a new one
  bool finished_ = false;
};

std::unique_ptr<ByteSource> open_source(const fs::path& path) {
  auto file = std::make_unique<FileSource>(path);
  if (file->starts_with_gzip_magic()) return std::make_unique<GzipSource>(path, std::move(file));
  return file;
}

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
  std::uint64_t total = size_of(header.dtype);
  for (std::size_t axis = 0; axis < rank; ++axis) {
    const std::uint32_t extent = big_endian_u32(dims.data() + 4 * axis);
    header.shape.push_back(extent);
    if (__builtin_mul_overflow(total, extent, &total) || total > std::uint64_t{INT64_MAX})
      throw DataError(fmt::format("{}: IDX header declares an impossibly large shape [{}...]",
                                  path.string(), fmt::join(header.shape, ", ")));
  }
  header.data_bytes = total;
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
  const auto source = open_source(path);
  IdxHeader header = read_header(*source, path);
  Array array;
  array.dtype = header.dtype;
  array.bytes = read_data(*source, header, path);
  array.shape = std::move(header.shape);
  big_to_little_endian(array.bytes, size_of(array.dtype));
  return array;
}

}  // namespace kiln::data
