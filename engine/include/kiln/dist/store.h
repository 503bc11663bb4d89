// Rendezvous stores: a small key-value space every rank of a job can reach, used
// to pair Gloo's connections, to hand NCCL's unique id around, and by the
// watchdog's heartbeats. Three kinds:
//   file:DIR       a directory on a file system every rank sees (the HPC default);
//                  one file per key, renamed into place (Gloo's FileStore cannot
//                  overwrite a key, which heartbeats need)
//   tcp:HOST:PORT  rank 0 serves the keys on the address(es) HOST resolves to,
//                  port PORT, and nowhere else; everyone (rank 0 too) connects to
//                  HOST:PORT and proves the job's secret (KILN_RDZV_SECRET) first
//                  (Gloo 0.5 ships no TCP store)
//   torch:HOST:PORT[/PREFIX]
//                  a PyTorch TCPStore someone else serves (torchrun's agent store);
//                  every rank is a client and keeps its keys under PREFIX
//                  (default "kiln/"), so that nothing of torch's is touched
// Keys may be set again (heartbeats overwrite theirs); values are byte strings.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::dist {

class Store {
 public:
  virtual ~Store();
  virtual void set(const std::string& key, const std::string& value) = 0;
  // The value, or nullopt while the key is not set; never waits.
  virtual std::optional<std::string> try_get(const std::string& key) = 0;
  // Waits for the key; StageError naming the key and the store after `timeout`.
  std::string get(const std::string& key, std::chrono::milliseconds timeout);
  // "file:/shared/rdzv/job-17", for messages.
  virtual std::string describe() const = 0;
};

struct RendezvousSpec {
  enum class Kind { File, Tcp, Torch };
  Kind kind = Kind::File;
  std::filesystem::path dir;  // File
  std::string host;           // Tcp, Torch
  int port = 0;               // Tcp, Torch
  std::string prefix;         // Torch: "kiln/" unless the text names one
};

// "file:DIR", "tcp:HOST:PORT" or "torch:HOST:PORT[/PREFIX]"; ConfigError naming
// `origin` (--rdzv, KILN_RDZV) for anything else.
RendezvousSpec parse_rendezvous(std::string_view text, std::string_view origin);

// A file store in `dir` (created). StageError naming the directory when it cannot
// be created.
std::unique_ptr<Store> open_file_store(const std::filesystem::path& dir);
// What kiln's TCP store admits (docs/distributed.md). A connection that breaks
// one of these is dropped and logged; it stalls no other.
inline constexpr std::size_t kStoreMaxKeyBytes = 4096;
inline constexpr std::size_t kStoreMaxValueBytes = 16u << 20;
inline constexpr std::size_t kStoreMaxKeys = 1u << 20;
// A connection that has begun a message (the handshake included) must finish it,
// and read the answer, within this.
inline constexpr std::chrono::seconds kStoreMessageDeadline{5};
// Connections still in their handshake, in all and from one host (address
// without port); more are refused until some finish. A refused rank connects again
// until its timeout, so one host's stalled handshakes delay only its own ranks.
inline constexpr std::size_t kStoreMaxPendingConnections = 256;
inline constexpr std::size_t kStoreMaxPendingPerHost = 16;
// Warnings about refused and dropped connections: at most this many per window;
// the rest are counted and reported in one line when the window ends.
inline constexpr std::size_t kStoreWarningsPerWindow = 20;
inline constexpr std::chrono::seconds kStoreWarningWindow{10};
inline constexpr std::size_t kMinSecretBytes = 16;

// `serve`: this process serves the keys on host:port (rank 0), bound to the
// addresses `host` resolves to. Connects to host:port, retrying until `timeout`
// (the server may start later), and proves `secret`. ConfigError when `secret` is
// empty or short (check_rdzv_secret); StageError naming the address when it
// cannot serve or connect, or when the store refuses the secret.
std::unique_ptr<Store> open_tcp_store(const std::string& host, int port, bool serve,
                                      std::chrono::milliseconds timeout, const std::string& secret);
// 64 hex digits from OpenSSL's RAND_bytes: a job's KILN_RDZV_SECRET.
std::string make_rdzv_secret();
// ConfigError naming `store` and telling how to set KILN_RDZV_SECRET when
// `secret` is empty or shorter than kMinSecretBytes.
void check_rdzv_secret(std::string_view secret, std::string_view store);
// A client of the PyTorch TCPStore at host:port (torchrun's agent store), both
// of PyTorch's wire protocols (up to 2.1; 2.2 on, VALIDATE first); kiln's keys live
// under `prefix` there. Retries a refused connection until `timeout`; StageError
// naming the address when the store cannot be reached or answers neither protocol.
std::unique_ptr<Store> open_torch_store(const std::string& host, int port,
                                        const std::string& prefix,
                                        std::chrono::milliseconds timeout);
// The store `spec` names; rank 0 serves a tcp: store, nobody a torch: one.
// `secret` (KILN_RDZV_SECRET) opens a tcp: store; file: and torch: need none.
std::unique_ptr<Store> open_store(const RendezvousSpec& spec, int rank,
                                  std::chrono::milliseconds timeout, const std::string& secret);

}  // namespace kiln::dist
