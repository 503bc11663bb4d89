// A connection to kiln's TCP store that speaks its wire format by hand
// (engine/src/dist/tcp_store_server.h): the tests play well-behaved, slow and
// hostile clients with it. The proof is computed here with OpenSSL directly, not
// with kiln's own code, so that the two must agree.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace kiln::test {

inline std::string store_proof(const std::string& secret, const std::string& nonce) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(nonce.data()), nonce.size(), digest, &size);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

// A length-prefixed key or value.
inline std::string store_field(const std::string& bytes) {
  const auto size = static_cast<std::uint32_t>(bytes.size());
  return std::string(reinterpret_cast<const char*>(&size), sizeof size) + bytes;
}
inline std::string store_length(std::uint32_t size) {
  return std::string(reinterpret_cast<const char*>(&size), sizeof size);
}

class RawStoreClient {
 public:
  // Connects to address:port, trying again every 10 ms for `patience` (the store
  // may not be up yet); connected() tells whether it got there. `source`, when
  // given, is the local address to connect from (any 127/8 address reaches the
  // loopback: the tests play other hosts with them).
  RawStoreClient(int port, const char* address = "127.0.0.1",
                 std::chrono::milliseconds patience = std::chrono::milliseconds(0),
                 const char* source = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + patience;
    do {
      fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
      if (source != nullptr) {
        sockaddr_in from{};
        from.sin_family = AF_INET;
        ::inet_pton(AF_INET, source, &from.sin_addr);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from);
      }
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(static_cast<std::uint16_t>(port));
      ::inet_pton(AF_INET, address, &to.sin_addr);
      if (::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) return;
      error_ = errno;
      ::close(fd_);
      fd_ = -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } while (std::chrono::steady_clock::now() < deadline);
  }
  ~RawStoreClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawStoreClient(const RawStoreClient&) = delete;
  RawStoreClient& operator=(const RawStoreClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  int error() const { return error_; }  // errno of the last failed connect
  void send(const std::string& bytes) const {
    ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }
  // Up to `count` bytes, fewer when the server closes or `patience` passes.
  std::string read(std::size_t count,
                   std::chrono::milliseconds patience = std::chrono::seconds(10)) const {
    std::string bytes;
    const auto deadline = std::chrono::steady_clock::now() + patience;
    while (bytes.size() < count && std::chrono::steady_clock::now() < deadline) {
      pollfd fd{fd_, POLLIN, 0};
      if (::poll(&fd, 1, 50) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::recv(fd_, buffer, std::min(sizeof buffer, count - bytes.size()), 0);
      if (n <= 0) break;
      bytes.append(buffer, static_cast<std::size_t>(n));
    }
    return bytes;
  }
  // Whether the server closes the connection within `patience` (bytes it sends
  // meanwhile are dropped).
  bool closed_within(std::chrono::milliseconds patience) const {
    const auto deadline = std::chrono::steady_clock::now() + patience;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd fd{fd_, POLLIN, 0};
      if (::poll(&fd, 1, 50) <= 0) continue;
      char buffer[4096];
      if (::recv(fd_, buffer, sizeof buffer, 0) <= 0) return true;
    }
    return false;
  }
  // The greeting's nonce ("kST1" and 32 bytes); empty when the greeting is not that.
  std::string nonce() const {
    const std::string greeting = read(36);
    return greeting.size() == 36 && greeting.starts_with("kST1") ? greeting.substr(4) : "";
  }
  // Reads the greeting and answers it with `secret`'s proof; true when accepted.
  bool prove(const std::string& secret) const {
    const std::string nonce = this->nonce();
    if (nonce.empty()) return false;
    send(store_proof(secret, nonce));
    return read(1) == "a";
  }

 private:
  int fd_ = -1;
  int error_ = 0;
};

}  // namespace kiln::test
