// Plain and gzip byte sources, and a line splitter over them.
#include "data/byte_source.h"

#include <kiln/error.h>

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace kiln::data::detail {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kBlockBytes = std::size_t{1} << 20;

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

}  // namespace

std::unique_ptr<ByteSource> open_source(const fs::path& path) {
  auto file = std::make_unique<FileSource>(path);
  if (file->starts_with_gzip_magic()) return std::make_unique<GzipSource>(path, std::move(file));
  return file;
}

LineReader::LineReader(std::unique_ptr<ByteSource> source, fs::path path,
                       std::size_t max_line_bytes)
    : source_(std::move(source)), path_(std::move(path)), max_line_bytes_(max_line_bytes) {}

void LineReader::line_too_long() const {
  throw DataError(
      fmt::format("{}:{}: line is longer than {} bytes, the most kiln reads in one line",
                  path_.string(), line_number_ + 1, max_line_bytes_));
}

bool LineReader::refill() {
  // Keeps the unfinished line, appends the next block after it.
  buffer_.erase(0, position_);
  position_ = 0;
  const std::size_t old_size = buffer_.size();
  buffer_.resize(old_size + kBlockBytes);
  const std::size_t got =
      source_->read(reinterpret_cast<std::uint8_t*>(buffer_.data()) + old_size, kBlockBytes);
  buffer_.resize(old_size + got);
  at_end_ = got < kBlockBytes;
  return got > 0;
}

bool LineReader::next(std::string& line) {
  for (;;) {
    const std::size_t end = buffer_.find('\n', position_);
    if (end != std::string::npos) {
      if (end - position_ > max_line_bytes_) line_too_long();
      line.assign(buffer_, position_, end - position_);
      position_ = end + 1;
      break;
    }
    if (buffer_.size() - position_ > max_line_bytes_) line_too_long();
    if (at_end_ || !refill()) {
      if (position_ >= buffer_.size()) return false;
      line.assign(buffer_, position_, std::string::npos);
      position_ = buffer_.size();
      break;
    }
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  ++line_number_;
  return true;
}

}  // namespace kiln::data::detail
