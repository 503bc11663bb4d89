// Reading input files as a stream of bytes, plain or gzip-compressed (detected from
// the content), so that the IDX, CSV and NPY parsers share one reader and never
// size a buffer from an untrusted header. Internal to engine/src/data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace kiln::data::detail {

// Delivers the bytes of a file, in order; read() returns fewer bytes than asked
// only at the end of the data. Errors are DataErrors naming the file.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual std::size_t read(std::uint8_t* out, std::size_t size) = 0;
};

// The file's bytes, inflated when it starts with the gzip magic 1f 8b.
std::unique_ptr<ByteSource> open_source(const std::filesystem::path& path);

// Longest line the text readers accept. A real CSV row of numbers is far shorter;
// without a cap a gzip bomb (a few KB inflating to gigabytes without a newline)
// becomes one line held in memory.
inline constexpr std::size_t kMaxLineBytes = std::size_t{1} << 20;

// Splits a source into lines (without "\n" or "\r\n"), for text formats. A line
// longer than `max_line_bytes` is a DataError "<path>:<line>: ..." raised as soon
// as that many bytes have been read without a newline.
class LineReader {
 public:
  LineReader(std::unique_ptr<ByteSource> source, std::filesystem::path path,
             std::size_t max_line_bytes = kMaxLineBytes);
  // False at the end of the data; the last line needs no terminating newline.
  bool next(std::string& line);
  // 1-based number of the line next() returned last.
  std::int64_t line_number() const noexcept { return line_number_; }

 private:
  bool refill();
  [[noreturn]] void line_too_long() const;

  std::unique_ptr<ByteSource> source_;
  std::filesystem::path path_;
  std::size_t max_line_bytes_;
  std::string buffer_;
  std::size_t position_ = 0;
  bool at_end_ = false;
  std::int64_t line_number_ = 0;
};

}  // namespace kiln::data::detail
