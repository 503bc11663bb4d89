// A client of PyTorch's TCPStore. Under torchrun with its agent store
// (TORCHELASTIC_USE_AGENT_STORE=True) the agent already serves one on
// MASTER_ADDR:MASTER_PORT, so kiln's ranks join it instead of serving their own.
//
// The wire format, read in PyTorch's torch/csrc/distributed/c10d/TCPStore.cpp,
// TCPStoreBackend.{hpp,cpp} and TCPStoreLibUvBackend.cpp (docs/distributed.md
// names the versions): a request is a command byte and its arguments; a string is
// a 64-bit length and its bytes, both in host order (little-endian wherever
// PyTorch runs). The commands kiln needs:
//   SET key value        -> nothing
//   CHECK count key...   -> one byte: 0 all present, 1 not
//   GET key              -> length, bytes; a missing key makes the classic server
//                           drop the connection, so GET only follows a CHECK
//   GETNUMKEYS           -> a 64-bit count (the probe below)
// PyTorch's own client puts "/" before every key, so kiln does too: what kiln sets
// as "/kiln/x" reads as "kiln/x" from Python.
//
// Two dialects. Older servers (up to PyTorch 2.1) take commands from the first
// byte, SET = 0. Newer ones (2.2 on) want every connection to open with VALIDATE
// (0) and the 32-bit magic 0x3C85F7CE, and number the commands from SET = 1. No opening suits both:
// an older server reads VALIDATE as a SET whose key length starts with the magic and allocates a
// gigabyte for it. So the client first sends what an older server takes as a harmless SET under
// kiln's prefix (whose key length, read by a newer server as the magic, is wrong) and a GETNUMKEYS:
//   older server: answers the count            -> stay, older dialect
//   newer classic server: closes at once       -> reconnect, VALIDATE
//   newer libuv server: parses nothing until more bytes arrive, then reads the
//     opening as an unknown command and closes -> one more GETNUMKEYS every
//     100 ms (harmless to an older server, which answers each) brings that about
#include <kiln/dist/store.h>
#include <kiln/error.h>

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "dist/socket.h"

namespace kiln::dist {
namespace {

constexpr std::uint32_t kValidationMagic = 0x3C85F7CE;

// Command bytes of one dialect.
struct Commands {
  std::uint8_t set, get, check, count_keys;
};
constexpr Commands kUnvalidated{0, 2, 4, 6};
constexpr Commands kValidated{1, 3, 5, 7};

// A request being built: appended to, then sent in one write.
class Request {
 public:
  explicit Request(std::uint8_t command) { bytes_.push_back(static_cast<char>(command)); }
  Request& value(std::uint64_t v) {
    bytes_.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Request& string(const std::string& s) {
    value(s.size());
    bytes_ += s;
    return *this;
  }
  Request& then(const Request& next) {
    bytes_ += next.bytes_;
    return *this;
  }
  bool send(int fd) const { return write_all(fd, bytes_.data(), bytes_.size()); }

 private:
  std::string bytes_;
};

class TorchStore final : public Store {
 public:
  TorchStore(const std::string& host, int port, const std::string& prefix,
             std::chrono::milliseconds timeout)
      : host_(host), port_(port), prefix_(prefix), timeout_(timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    socket_ = connect();
    if (probe_answers(deadline)) {
      commands_ = kUnvalidated;
      dialect_ = "PyTorch's TCPStore without VALIDATE";
    } else {
      socket_ = connect();
      commands_ = kValidated;
      dialect_ = "PyTorch's TCPStore with VALIDATE";
      char opening[5] = {0};
      std::memcpy(opening + 1, &kValidationMagic, sizeof kValidationMagic);
      if (!write_all(socket_.fd(), opening, sizeof opening)) lost("validate", "");
    }
    // Both dialects must now round-trip a key of kiln's.
    set("protocol", dialect_);
    if (!try_get("protocol"))
      throw StageError(fmt::format("rendezvous {}: the store at {}:{} does not keep keys ({})",
                                   describe(), host_, port_, where()));
  }

  void set(const std::string& key, const std::string& value) override {
    std::lock_guard lock(mutex_);
    if (!Request(commands_.set).string(raw(key)).string(value).send(socket_.fd())) lost("set", key);
  }

  std::optional<std::string> try_get(const std::string& key) override {
    std::lock_guard lock(mutex_);
    if (!Request(commands_.check).value(1).string(raw(key)).send(socket_.fd())) lost("check", key);
    std::uint8_t ready = 0;
    if (!read_all(socket_.fd(), &ready, 1)) lost("check", key);
    if (ready == 1) return std::nullopt;
    if (ready != 0) unexpected("check", key, fmt::format("answer byte {}", ready));
    if (!Request(commands_.get).string(raw(key)).send(socket_.fd())) lost("get", key);
    std::uint64_t size = 0;
    if (!read_all(socket_.fd(), &size, sizeof size)) lost("get", key);
    if (size > (std::uint64_t{1} << 30))
      unexpected("get", key, fmt::format("a value of {} bytes", size));
    std::string value(size, '\0');
    if (!read_all(socket_.fd(), value.data(), size)) lost("get", key);
    return value;
  }

  std::string describe() const override {
    return fmt::format("torch:{}:{}/{}",
                       host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_, port_,
                       prefix_);
  }

 private:
  Socket connect() const {
    Socket socket = connect_to(host_, port_, timeout_, describe() + " (" + where() + ")");
    set_io_timeout(socket, timeout_);
    return socket;
  }

  // The probe of the comment at the top: true when the server answered as an
  // older one (the connection stays usable), false when it closed the connection.
  bool probe_answers(std::chrono::steady_clock::time_point deadline) {
    const int fd = socket_.fd();
    const Request count(kUnvalidated.count_keys);
    if (!Request(kUnvalidated.set)
             .string(raw("probe"))
             .string("kiln probes the protocol")
             .then(count)
             .send(fd))
      return false;
    std::size_t asked = 1, received = 0;
    char answer[64];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd ready{fd, POLLIN, 0};
      const int events = ::poll(&ready, 1, 100);
      if (events < 0 && errno == EINTR) continue;
      if (events == 0) {
        if (!count.send(fd)) return false;
        ++asked;
        continue;
      }
      const ssize_t n = ::recv(fd, answer, sizeof answer, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      received += static_cast<std::size_t>(n);
      if (received < sizeof(std::int64_t)) continue;
      // An older server answers every count it was sent: read them all.
      while (received < asked * sizeof(std::int64_t)) {
        const std::size_t want = std::min(sizeof answer, asked * sizeof(std::int64_t) - received);
        if (!read_all(fd, answer, want)) lost("probe", "");
        received += want;
      }
      if (received != asked * sizeof(std::int64_t))
        unexpected("probe", "", fmt::format("{} bytes for {} counts", received, asked));
      return true;
    }
    throw StageError(fmt::format(
        "rendezvous {}: the server at {}:{} answers neither of PyTorch's TCPStore protocols "
        "within {:.1f} s ({})",
        describe(), host_, port_, timeout_.count() / 1e3, where()));
  }

  std::string raw(const std::string& key) const { return "/" + prefix_ + key; }

  std::string where() const {
    return fmt::format("torchrun's agent store, MASTER_ADDR:MASTER_PORT={}:{}", host_, port_);
  }

  static std::string request(const char* what, const std::string& key) {
    return key.empty() ? std::string(what) : fmt::format("{} '{}'", what, key);
  }
  [[noreturn]] void lost(const char* what, const std::string& key) const {
    throw StageError(fmt::format(
        "rendezvous {}: {}: the connection to the store at {}:{} was lost or timed out ({})",
        describe(), request(what, key), host_, port_, where()));
  }
  [[noreturn]] void unexpected(const char* what, const std::string& key,
                               const std::string& answer) const {
    throw StageError(
        fmt::format("rendezvous {}: {}: unexpected answer from the store at {}:{} "
                    "({}): {} ({})",
                    describe(), request(what, key), host_, port_, dialect_, answer, where()));
  }

  std::string host_;
  int port_;
  std::string prefix_;
  std::chrono::milliseconds timeout_;
  Commands commands_ = kUnvalidated;
  std::string dialect_ = "PyTorch's TCPStore";
  Socket socket_;
  std::mutex mutex_;
};

}  // namespace

std::unique_ptr<Store> open_torch_store(const std::string& host, int port,
                                        const std::string& prefix,
                                        std::chrono::milliseconds timeout) {
  return std::make_unique<TorchStore>(host, port, prefix, timeout);
}

}  // namespace kiln::dist
