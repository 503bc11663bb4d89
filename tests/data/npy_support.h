// Builders for .npy files in tests: numpy's version 1.0 layout.
#pragma once

#include "data/data_test_support.h"

#include <string>

namespace kiln::data::testing {

// "\x93NUMPY" 1.0, then the dict padded with spaces to a multiple of 64 bytes
// (numpy's alignment) and a newline, then `data`.
inline Bytes npy_file(const std::string& descr, const std::string& shape, const Bytes& data,
                      bool fortran = false) {
  std::string header = "{'descr': '" + descr +
                       "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  const std::string preamble = std::string("\x93NUMPY\x01\x00", 8) +
                               static_cast<char>(header.size() & 0xff) +
                               static_cast<char>(header.size() >> 8);
  const std::string text = preamble + header;
  Bytes file(text.begin(), text.end());
  file.resize(text.size() + data.size());
  if (!data.empty()) std::memcpy(file.data() + text.size(), data.data(), data.size());
  return file;
}

template <class T>
Bytes little_endian(const std::vector<T>& values) {
  Bytes bytes(values.size() * sizeof(T));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

}  // namespace kiln::data::testing
