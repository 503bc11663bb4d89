// kiln's TCP store (Gloo 0.5 has none). Rank 0 runs the server on a thread: one
// poll(2) loop over the listening socket and its clients. Every rank, rank 0
// included, talks to it through one client connection guarded by a mutex.
// Messages: 'S' key value -> 'k';  'G' key -> 'y' value | 'n'; strings are a
// 32-bit length (host order: every rank runs the same binary on the same kind of
// machine) and the bytes.
#include <kiln/dist/store.h>
#include <kiln/error.h>

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "dist/socket.h"

namespace kiln::dist {
namespace {

bool write_string(int fd, const std::string& s) {
  const auto size = static_cast<std::uint32_t>(s.size());
  return write_all(fd, &size, sizeof size) && write_all(fd, s.data(), s.size());
}

bool read_string(int fd, std::string& s) {
  std::uint32_t size = 0;
  if (!read_all(fd, &size, sizeof size) || size > (64u << 20)) return false;
  s.resize(size);
  return read_all(fd, s.data(), size);
}

class Server {
 public:
  explicit Server(int port) {
    listener_ = Socket(::socket(AF_INET6, SOCK_STREAM, 0));
    if (listener_.fd() < 0) fail(port, "socket");
    const int on = 1, off = 0;
    ::setsockopt(listener_.fd(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    ::setsockopt(listener_.fd(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    address.sin6_addr = in6addr_any;
    address.sin6_port = htons(static_cast<std::uint16_t>(port));
    if (::bind(listener_.fd(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      fail(port, "bind");
    if (::listen(listener_.fd(), 128) != 0) fail(port, "listen");
    thread_ = std::thread([this] { serve(); });
  }
  ~Server() {
    stop_ = true;
    thread_.join();
  }

 private:
  [[noreturn]] static void fail(int port, const char* call) {
    throw StageError(fmt::format("rendezvous tcp store: cannot serve on port {}: {}: {}", port,
                                 call, std::strerror(errno)));
  }

  void serve() {
    while (!stop_) {
      std::vector<pollfd> fds{{listener_.fd(), POLLIN, 0}};
      for (const Socket& client : clients_) fds.push_back({client.fd(), POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 100) <= 0) continue;
      std::vector<std::size_t> closed;
      for (std::size_t i = 1; i < fds.size(); ++i)
        if (fds[i].revents != 0 && !answer(clients_[i - 1].fd())) closed.push_back(i - 1);
      for (auto it = closed.rbegin(); it != closed.rend(); ++it)
        clients_.erase(clients_.begin() + static_cast<std::ptrdiff_t>(*it));
      if ((fds[0].revents & POLLIN) != 0) {
        const int fd = ::accept(listener_.fd(), nullptr, nullptr);
        if (fd >= 0) {
          const int on = 1;
          ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
          clients_.emplace_back(fd);
        }
      }
    }
  }

  // One request; false when the client went away or spoke nonsense.
  bool answer(int fd) {
    char op = 0;
    std::string key, value;
    if (!read_all(fd, &op, 1) || !read_string(fd, key)) return false;
    if (op == 'S') {
      if (!read_string(fd, value)) return false;
      values_[key] = std::move(value);
      return write_all(fd, "k", 1);
    }
    if (op != 'G') return false;
    const auto found = values_.find(key);
    if (found == values_.end()) return write_all(fd, "n", 1);
    return write_all(fd, "y", 1) && write_string(fd, found->second);
  }

  Socket listener_;
  std::vector<Socket> clients_;
  std::map<std::string, std::string> values_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class TcpStore final : public Store {
 public:
  TcpStore(const std::string& host, int port, bool serve, std::chrono::milliseconds timeout)
      : host_(host), port_(port) {
    if (serve) server_ = std::make_unique<Server>(port);
    socket_ = connect_to(host, port, timeout, describe());
  }

  void set(const std::string& key, const std::string& value) override {
    std::lock_guard lock(mutex_);
    char ack = 0;
    if (!write_all(socket_.fd(), "S", 1) || !write_string(socket_.fd(), key) ||
        !write_string(socket_.fd(), value) || !read_all(socket_.fd(), &ack, 1) || ack != 'k')
      lost("set", key);
  }
  std::optional<std::string> try_get(const std::string& key) override {
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
  [[noreturn]] void lost(const char* what, const std::string& key) const {
    throw StageError(
        fmt::format("rendezvous {}: {} '{}': connection to the store (served by "
                    "rank 0) lost",
                    describe(), what, key));
  }

  std::string host_;
  int port_;
  std::unique_ptr<Server> server_;  // rank 0 only; destroyed after the socket below
  Socket socket_;
  std::mutex mutex_;
};

}  // namespace

std::unique_ptr<Store> open_tcp_store(const std::string& host, int port, bool serve,
                                      std::chrono::milliseconds timeout) {
  return std::make_unique<TcpStore>(host, port, serve, timeout);
}

}  // namespace kiln::dist
