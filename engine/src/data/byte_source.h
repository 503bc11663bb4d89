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

// Splits a source into lines (without "\n" or "\r\n"), for text formats.
class LineReader {
 public:
  explicit LineReader(std::unique_ptr<ByteSource> source);
  // False at the end of the data; the last line needs no terminating newline.
  bool next(std::string& line);
  // 1-based number of the line next() returned last.
  std::int64_t line_number() const noexcept { return line_number_; }

 private:
  bool refill();

  std::unique_ptr<ByteSource> source_;
  std::string buffer_;
  std::size_t position_ = 0;
  bool at_end_ = false;
  std::int64_t line_number_ = 0;
};

}  // namespace kiln::data::detail
