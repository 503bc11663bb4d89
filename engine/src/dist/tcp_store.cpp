// kiln's TCP store (Gloo 0.5 has none): the client every rank, rank 0 included,
// talks to the store through, one connection guarded by a mutex; rank 0 also runs
// the server (tcp_store_server.h, which describes the wire format).
#include <kiln/dist/store.h>
#include <kiln/error.h>

#include <fmt/format.h>

#include <cstring>
#include <mutex>
#include <thread>

#include "dist/socket.h"
#include "dist/store_handshake.h"
#include "dist/tcp_store_server.h"

namespace kiln::dist {
namespace {

bool write_string(int fd, const std::string& s) {
  const auto size = static_cast<std::uint32_t>(s.size());
  return write_all(fd, &size, sizeof size) && write_all(fd, s.data(), s.size());
}

bool read_string(int fd, std::string& s) {
  std::uint32_t size = 0;
  if (!read_all(fd, &size, sizeof size) || size > kStoreMaxValueBytes) return false;
  s.resize(size);
  return read_all(fd, s.data(), size);
}

class TcpStore final : public Store {
 public:
  TcpStore(const std::string& host, int port, bool serve, std::chrono::milliseconds timeout,
           const std::string& secret)
      : host_(host), port_(port) {
    check_rdzv_secret(secret, describe());
    if (serve) server_ = std::make_unique<TcpStoreServer>(host, port, secret, describe());
    socket_ = join(timeout, secret);
  }

  void set(const std::string& key, const std::string& value) override {
    check_caps("set", key, value);
    std::lock_guard lock(mutex_);
    char ack = 0;
    if (!write_all(socket_.fd(), "S", 1) || !write_string(socket_.fd(), key) ||
        !write_string(socket_.fd(), value) || !read_all(socket_.fd(), &ack, 1) || ack != 'k')
      lost("set", key);
  }
  std::optional<std::string> try_get(const std::string& key) override {
    check_caps("get", key, "");
    std::lock_guard lock(mutex_);
    char found = 0;
    if (!write_all(socket_.fd(), "G", 1) || !write_string(socket_.fd(), key) ||
        !read_all(socket_.fd(), &found, 1))
      lost("get", key);
    if (found == 'n') return std::nullopt;
    std::string value;
    if (found != 'y' || !read_string(socket_.fd(), value)) lost("get", key);
    return value;
  }
  std::string describe() const override { return fmt::format("tcp:{}:{}", host_, port_); }

 private:
  // The server would drop the connection for these; say why here instead.
  void check_caps(const char* what, const std::string& key, const std::string& value) const {
    if (key.size() > kStoreMaxKeyBytes || value.size() > kStoreMaxValueBytes)
      throw StageError(fmt::format(
          "rendezvous {}: {} '{}': a key of {} bytes or a value of {} bytes is over the store's "
          "caps ({} and {})",
          describe(), what, key.substr(0, 64), key.size(), value.size(), kStoreMaxKeyBytes,
          kStoreMaxValueBytes));
  }

  // A connection that proved `secret`. One the server closes before its greeting
  // (it is busy with other handshakes) is tried again until `timeout`.
  Socket join(std::chrono::milliseconds timeout, const std::string& secret) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      Socket socket =
          connect_to(host_, port_, std::max(left, std::chrono::milliseconds(0)), describe());
      set_io_timeout(socket, timeout);
      char greeting[sizeof kStoreGreeting + kNonceBytes];
      if (!read_all(socket.fd(), greeting, sizeof greeting)) {
        if (std::chrono::steady_clock::now() >= deadline)
          throw StageError(fmt::format(
              "rendezvous {}: the store closed every connection before greeting it", describe()));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      if (std::memcmp(greeting, kStoreGreeting, sizeof kStoreGreeting) != 0)
        throw StageError(fmt::format(
            "rendezvous {}: what listens there is not kiln's TCP store (another program, or a "
            "kiln of another version)",
            describe()));
      const std::string proof =
          handshake_proof(secret, std::string_view(greeting + sizeof kStoreGreeting, kNonceBytes));
      char accepted = 0;
      if (!write_all(socket.fd(), proof.data(), proof.size()) ||
          !read_all(socket.fd(), &accepted, 1) || accepted != 'a')
        throw StageError(fmt::format(
            "rendezvous {}: the store refused this rank's secret: every rank must see the same "
            "KILN_RDZV_SECRET",
            describe()));
      return socket;
    }
  }

  [[noreturn]] void lost(const char* what, const std::string& key) const {
    throw StageError(
        fmt::format("rendezvous {}: {} '{}': connection to the store (served by "
                    "rank 0) lost",
                    describe(), what, key));
  }

  std::string host_;
  int port_;
  std::unique_ptr<TcpStoreServer> server_;  // rank 0 only; destroyed after the socket below
  Socket socket_;
  std::mutex mutex_;
};

}  // namespace

std::unique_ptr<Store> open_tcp_store(const std::string& host, int port, bool serve,
                                      std::chrono::milliseconds timeout,
                                      const std::string& secret) {
  return std::make_unique<TcpStore>(host, port, serve, timeout, secret);
}

}  // namespace kiln::dist
