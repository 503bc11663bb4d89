#include "dist/tcp_store_server.h"

#include <kiln/dist/store.h>
#include <kiln/error.h>
#include <kiln/log.h>

#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "dist/store_handshake.h"
#include "dist/store_message.h"

namespace kiln::dist {
namespace {

// Sockets listening on every address `host` resolves to; a host that resolves to
// both an IPv6 and an IPv4 address (localhost) gets both, so a client finds the
// store whichever it tries first.
std::vector<Socket> listen_on(const std::string& host, int port, const std::string& name) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found))
    throw StageError(fmt::format("rendezvous {}: rank 0 cannot serve the store: host '{}': {}",
                                 name, host, ::gai_strerror(rc)));
  std::vector<Socket> listeners;
  std::vector<std::string> bound;
  std::string why;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const std::string address = address_text(a->ai_addr, a->ai_addrlen);
    if (std::find(bound.begin(), bound.end(), address) != bound.end()) continue;
    Socket socket(::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    const int on = 1;
    ::setsockopt(socket.fd(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (a->ai_family == AF_INET6)
      ::setsockopt(socket.fd(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (socket.fd() < 0 || ::bind(socket.fd(), a->ai_addr, a->ai_addrlen) != 0 ||
        ::listen(socket.fd(), 128) != 0) {
      why += fmt::format("{}{}: {}", why.empty() ? "" : "; ", address, std::strerror(errno));
      continue;
    }
    bound.push_back(address);
    listeners.push_back(std::move(socket));
  }
  ::freeaddrinfo(found);
  if (listeners.empty())
    throw StageError(fmt::format(
        "rendezvous {}: rank 0 cannot serve the store: {} (rank 0 binds the address that '{}' "
        "names, so it must be an address of rank 0's node)",
        name, why, host));
  log::debug("rendezvous {}: serving on {}", name, fmt::join(bound, ", "));
  return listeners;
}

}  // namespace

TcpStoreServer::TcpStoreServer(const std::string& host, int port, std::string secret,
                               std::string name)
    : secret_(std::move(secret)), name_(std::move(name)), listeners_(listen_on(host, port, name_)) {
  thread_ = std::thread([this] { serve(); });
}

TcpStoreServer::~TcpStoreServer() {
  stop_ = true;
  thread_.join();
}

void TcpStoreServer::serve() {
  std::vector<pollfd> fds;
  while (!stop_) {
    fds.clear();
    for (const Socket& listener : listeners_) fds.push_back({listener.fd(), POLLIN, 0});
    // A client gets no new request read until it has taken its last answer.
    for (const Connection& c : connections_)
      fds.push_back({c.socket.fd(), static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
    if (::poll(fds.data(), fds.size(), 100) < 0 && errno != EINTR)
      log::warn("rendezvous {}: poll: {}", name_, std::strerror(errno));
    const auto now = Clock::now();
    roll_warning_window(now);
    std::size_t kept = 0;
    for (std::size_t i = 0; i < connections_.size(); ++i) {
      Connection& c = connections_[i];
      const short events = fds[listeners_.size() + i].revents;
      Verdict verdict;
      if (events != 0) verdict = c.out.empty() ? receive(c) : send_some(c);
      if (!verdict) verdict = expired(c, now);
      if (verdict) {
        if (!verdict->empty())
          warn(fmt::format("dropped the connection from {}: {}", c.peer, *verdict));
        continue;
      }
      if (kept != i) connections_[kept] = std::move(c);
      ++kept;
    }
    connections_.resize(kept);
    for (std::size_t i = 0; i < listeners_.size(); ++i)
      if ((fds[i].revents & POLLIN) != 0) accept_from(listeners_[i]);
  }
}

void TcpStoreServer::accept_from(const Socket& listener) {
  while (true) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    Socket socket(::accept4(listener.fd(), reinterpret_cast<sockaddr*>(&address), &length,
                            SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (socket.fd() < 0) return;
    const auto* from = reinterpret_cast<sockaddr*>(&address);
    Connection c{std::move(socket), address_text(from, length), host_text(from, length)};
    if (const auto why = over_pending_caps(c)) {
      warn(fmt::format("refused the connection from {}: {}", c.peer, *why));
      continue;
    }
    const int on = 1;
    ::setsockopt(c.socket.fd(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    c.nonce = random_bytes(kNonceBytes);
    c.out.assign(kStoreGreeting, sizeof kStoreGreeting);
    c.out += c.nonce;
    c.deadline = Clock::now() + kStoreMessageDeadline;
    if (send_some(c)) continue;  // gone already
    connections_.push_back(std::move(c));
  }
}

std::optional<std::string> TcpStoreServer::over_pending_caps(const Connection& c) const {
  std::size_t pending = 0, from_host = 0;
  for (const Connection& other : connections_) {
    if (other.nonce.empty()) continue;
    ++pending;
    if (other.host == c.host) ++from_host;
  }
  if (from_host >= kStoreMaxPendingPerHost)
    return fmt::format("{} others from {} are in their handshake", from_host, c.host);
  if (pending >= kStoreMaxPendingConnections)
    return fmt::format("{} others are in their handshake", pending);
  return std::nullopt;
}

void TcpStoreServer::roll_warning_window(Clock::time_point now) {
  WarningBudget& budget = warnings_;
  if (now - budget.window_start < kStoreWarningWindow) return;
  if (budget.suppressed > 0)
    log::warn("rendezvous {}: {} more warnings about connections in {} s were not logged", name_,
              budget.suppressed, kStoreWarningWindow.count());
  budget = WarningBudget{now, 0, 0};
}

void TcpStoreServer::warn(const std::string& line) {
  WarningBudget& budget = warnings_;
  roll_warning_window(Clock::now());
  if (budget.logged >= kStoreWarningsPerWindow) {
    ++budget.suppressed;
    return;
  }
  ++budget.logged;
  log::warn("rendezvous {}: {}", name_, line);
}

// One read of what has arrived (at most 64 KiB, so that one client streaming a
// large value takes turns with the others), then every whole message in it.
TcpStoreServer::Verdict TcpStoreServer::receive(Connection& c) {
  char buffer[65536];
  const ssize_t n = ::recv(c.socket.fd(), buffer, sizeof buffer, 0);
  if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return std::nullopt;
  if (n <= 0) {
    if (!c.nonce.empty()) return std::string("closed the connection without proving the secret");
    if (!c.in.empty())
      return fmt::format("closed the connection {} bytes into a message", c.in.size());
    return std::string();
  }
  c.in.append(buffer, static_cast<std::size_t>(n));
  if (Verdict verdict = consume(c)) return verdict;
  start_clock(c);
  return c.out.empty() ? std::nullopt : send_some(c);
}

TcpStoreServer::Verdict TcpStoreServer::consume(Connection& c) {
  if (!c.nonce.empty()) {
    if (c.in.size() < kProofBytes) return std::nullopt;
    if (!proof_matches(secret_, c.nonce, std::string_view(c.in).substr(0, kProofBytes)))
      return std::string("refused: it did not prove the job's secret (KILN_RDZV_SECRET)");
    c.in.erase(0, kProofBytes);
    c.nonce.clear();
    c.out += 'a';
    c.deadline = Clock::time_point::max();
  }
  // Clients wait for each answer, so there is at most one message here.
  const StoreParse parse = parse_store_request(c.in);
  if (!parse.request) return parse.error.empty() ? Verdict() : Verdict(parse.error);
  return answer(c, *parse.request);
}

TcpStoreServer::Verdict TcpStoreServer::answer(Connection& c, const StoreRequest& request) {
  const std::string_view key = request.key, value = request.value;
  if (request.op == 'S') {
    const auto found = values_.find(key);
    if (found != values_.end()) {
      found->second = value;
    } else if (values_.size() >= kStoreMaxKeys) {
      return fmt::format("set a new key when the store holds {} already, the cap", values_.size());
    } else {
      values_.emplace(key, value);
    }
    c.out += 'k';
  } else if (const auto found = values_.find(key); found == values_.end()) {
    c.out += 'n';
  } else {
    c.out += 'y';
    append_store_field(c.out, found->second);
  }
  c.in.erase(0, request.size);
  c.deadline = Clock::time_point::max();
  return std::nullopt;
}

TcpStoreServer::Verdict TcpStoreServer::send_some(Connection& c) {
  const ssize_t n = ::send(c.socket.fd(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
  if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return std::string();
  if (n > 0) c.out.erase(0, static_cast<std::size_t>(n));
  start_clock(c);
  return std::nullopt;
}

// A deadline runs from the first byte of a message (or of its answer) until the
// connection is idle again; the handshake's runs from the accept.
void TcpStoreServer::start_clock(Connection& c) {
  if (!c.nonce.empty()) return;
  if (c.in.empty() && c.out.empty())
    c.deadline = Clock::time_point::max();
  else if (c.deadline == Clock::time_point::max())
    c.deadline = Clock::now() + kStoreMessageDeadline;
}

TcpStoreServer::Verdict TcpStoreServer::expired(const Connection& c, Clock::time_point now) {
  if (now < c.deadline) return std::nullopt;
  const auto seconds = kStoreMessageDeadline.count();
  if (!c.nonce.empty()) return fmt::format("did not prove the secret within {} s", seconds);
  if (!c.in.empty())
    return fmt::format("sent {} bytes of a message and not the rest within {} s", c.in.size(),
                       seconds);
  return fmt::format("did not take its answer within {} s", seconds);
}

}  // namespace kiln::dist
