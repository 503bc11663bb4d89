// Helpers shared by the data tests: a scratch directory, IDX and gzip builders.
#pragma once

#include <kiln/data/array.h>
#include <kiln/fs.h>

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/support.h"

namespace kiln::data::testing {

using Bytes = std::vector<std::uint8_t>;

using ScratchDir = kiln::test::TempDir;

// Sets an environment variable for the test's lifetime.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

inline void write_bytes(const std::filesystem::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

inline Bytes read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// An IDX file: zero, zero, type code, rank, big-endian u32 dims, then `data`
// (already in IDX's big-endian element order).
inline Bytes idx_file(std::uint8_t type_code, const std::vector<std::uint32_t>& dims,
                      const Bytes& data) {
  Bytes file{0, 0, type_code, static_cast<std::uint8_t>(dims.size())};
  for (const std::uint32_t dim : dims)
    for (int shift = 24; shift >= 0; shift -= 8)
      file.push_back(static_cast<std::uint8_t>(dim >> shift));
  file.insert(file.end(), data.begin(), data.end());
  return file;
}

// The big-endian bytes of `values` (what IDX stores for multi-byte types).
template <class T>
Bytes big_endian(const std::vector<T>& values) {
  Bytes bytes;
  for (const T& value : values) {
    std::uint8_t raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));
    for (std::size_t i = sizeof(T); i-- > 0;) bytes.push_back(raw[i]);  // host is little-endian
  }
  return bytes;
}

template <class T>
std::vector<T> values_of(const Bytes& little_endian) {
  std::vector<T> values(little_endian.size() / sizeof(T));
  std::memcpy(values.data(), little_endian.data(), values.size() * sizeof(T));
  return values;
}

// One gzip member holding `data`, as gzip(1) would write it.
inline Bytes gzip(const Bytes& data, int level = 6) {
  z_stream stream{};
  if (deflateInit2(&stream, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2");
  Bytes out(deflateBound(&stream, static_cast<uLong>(data.size())) + 64);
  stream.next_in = const_cast<Bytef*>(data.data());
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = out.data();
  stream.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate did not finish");
  return out;
}

// Deterministic, poorly compressible bytes (a 64-bit LCG's high bytes).
inline Bytes noise(std::size_t size, std::uint64_t seed) {
  Bytes bytes(size);
  for (auto& byte : bytes) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    byte = static_cast<std::uint8_t>(seed >> 56);
  }
  return bytes;
}

inline Array make_array(std::string name, DType dtype, std::vector<std::int64_t> shape,
                        Bytes bytes) {
  Array array;
  array.name = std::move(name);
  array.dtype = dtype;
  array.shape = std::move(shape);
  array.bytes = std::move(bytes);
  return array;
}

}  // namespace kiln::data::testing
