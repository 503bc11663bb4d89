// Private to dist: the server of kiln's TCP store, run by rank 0 (tcp_store.cpp
// is the client). One thread, one poll(2) loop over non-blocking sockets: a
// client is only ever read as far as its bytes have arrived, so a slow or hostile
// one delays nobody. The wire format (one connection per rank):
//   server -> client  "kST1" and a 32-byte random nonce
//   client -> server  HMAC-SHA256(secret, nonce), 32 bytes (store_handshake.h)
//   server -> client  'a'; a wrong proof closes the connection instead
//   then requests:    'S' key value -> 'k';  'G' key -> 'y' value | 'n'
// where a key or value is a 32-bit length (host order: every rank runs the same
// binary on the same kind of machine) and its bytes. A connection that breaks the
// caps or the deadline in kiln/dist/store.h is dropped with one warning line
// naming its peer (within a budget of warnings per window, the rest counted).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dist/socket.h"
#include "dist/store_message.h"

namespace kiln::dist {

inline constexpr char kStoreGreeting[4] = {'k', 'S', 'T', '1'};

class TcpStoreServer {
 public:
  // Listens on every address `host` resolves to (and nothing else), port `port`;
  // StageError naming `name` when none can be bound.
  TcpStoreServer(const std::string& host, int port, std::string secret, std::string name);
  ~TcpStoreServer();
  TcpStoreServer(const TcpStoreServer&) = delete;
  TcpStoreServer& operator=(const TcpStoreServer&) = delete;

 private:
  using Clock = std::chrono::steady_clock;
  struct Connection {
    Socket socket;
    std::string peer;   // address and port
    std::string host;   // address only
    std::string nonce;  // empty once the client proved the secret
    std::string in, out;
    Clock::time_point deadline = Clock::time_point::max();
  };
  // Why a connection goes: nullopt while it stays, "" when it closed cleanly.
  using Verdict = std::optional<std::string>;

  void serve();
  void accept_from(const Socket& listener);
  Verdict receive(Connection& connection);
  Verdict consume(Connection& connection);
  Verdict answer(Connection& connection, const StoreRequest& request);
  static Verdict send_some(Connection& connection);
  static void start_clock(Connection& connection);
  static Verdict expired(const Connection& connection, Clock::time_point now);
  // Why `connection` may not begin a handshake now, or nullopt.
  std::optional<std::string> over_pending_caps(const Connection& connection) const;
  // log::warn within the budget of kStoreWarningsPerWindow per kStoreWarningWindow,
  // so that a flood of hostile connections cannot flood the job's log.
  void warn(const std::string& line);
  // Ends the window once it is over, logging how many warnings it held back.
  void roll_warning_window(Clock::time_point now);

  struct WarningBudget {
    Clock::time_point window_start{};
    std::size_t logged = 0, suppressed = 0;
  };

  std::string secret_, name_;
  std::vector<Socket> listeners_;
  std::vector<Connection> connections_;
  std::map<std::string, std::string, std::less<>> values_;
  WarningBudget warnings_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace kiln::dist
