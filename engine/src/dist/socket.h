// Private to dist: the blocking TCP plumbing both TCP stores share (kiln's own,
// tcp_store.cpp, and the PyTorch TCPStore client, torch_store.cpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>

struct sockaddr;

namespace kiln::dist {

// Owns a file descriptor; closes it when destroyed.
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// False when the peer went away (or a receive timeout passed); never SIGPIPE.
bool write_all(int fd, const void* data, std::size_t size);
bool read_all(int fd, void* data, std::size_t size);

// Connects to host:port (TCP_NODELAY), retrying every 50 ms while the server is
// not up yet; after `timeout` a StageError "rendezvous <name>: cannot connect
// within T s: <why>".
Socket connect_to(const std::string& host, int port, std::chrono::milliseconds timeout,
                  const std::string& name);

// "10.0.0.7:51234" or "[::1]:29500", for messages.
std::string address_text(const sockaddr* address, unsigned length);
// The numeric address alone, without the port.
std::string host_text(const sockaddr* address, unsigned length);

// Reads and writes on `socket` give up after `timeout` instead of waiting for
// ever on a server that stopped answering.
void set_io_timeout(const Socket& socket, std::chrono::milliseconds timeout);

}  // namespace kiln::dist
