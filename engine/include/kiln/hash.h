// SHA-256 content ids (OpenSSL libcrypto underneath), as lowercase hex.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace kiln {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, std::size_t size);
  void update(std::string_view text) { update(text.data(), text.size()); }
  // Length-prefixed field, so that ("ab","c") and ("a","bc") hash differently.
  void update_field(std::string_view text);
  // Finishes the hash; the object cannot be updated afterwards.
  std::string hex_digest();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string sha256_hex(std::string_view data);
// Hash of a file's bytes; throws DataError naming the file if it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace kiln
