// Private to dist: the watchdog behind every collective. Each rank publishes a
// heartbeat in the rendezvous store (key hb.<rank>: a counter, the last collective
// it entered, and "run" or "abort <why>"), and reads the others'. When a
// collective fails or times out, the board says who is to blame: a rank whose
// counter stopped moving is dead (or hung hard), a live rank that has not entered
// the collective did not arrive, a rank that aborted says why. A rank that sees a
// peer abort stops at its next collective instead of waiting out its timeout.
#pragma once

#include <kiln/dist/store.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace kiln::dist {

class Watchdog {
 public:
  Watchdog(std::shared_ptr<Store> store, int rank, int size, std::chrono::milliseconds heartbeat);
  ~Watchdog();

  Store& store() noexcept { return *store_; }

  // Before collective `sequence`: records it, runs the stall test hook, and throws
  // StageError when a peer has aborted.
  void enter(std::uint64_t sequence, const char* name);
  // Why collective `sequence` failed, naming the ranks that did not arrive; waits
  // a few heartbeats to tell dead ranks from slow ones.
  std::string diagnose(std::uint64_t sequence, const std::string& what, double seconds,
                       const std::string& cause);
  // Tells the others this rank gives up (they stop at their next collective).
  void mark_aborted(const std::string& why);
  // The first peer abort seen, if any.
  std::optional<std::string> peer_abort() const;
  // A rank whose heartbeat has not moved for 10 periods, if any.
  std::optional<std::string> dead_peer() const;
  void stop();

 private:
  struct Entry {
    std::uint64_t counter = 0, sequence = 0;
    std::string state;  // "run" or "abort <why>"
  };
  void beat();
  void linger_after_abort();
  void publish(const std::string& state);
  std::vector<std::optional<Entry>> read_board();
  void stall_if_asked(std::uint64_t sequence);

  std::shared_ptr<Store> store_;
  const int rank_, size_;
  const std::chrono::milliseconds heartbeat_;
  std::atomic<std::uint64_t> entered_{0};
  std::uint64_t counter_ = 0;  // guarded by publish_mutex_
  std::string state_ = "run";  // guarded by publish_mutex_
  std::mutex publish_mutex_;
  mutable std::mutex mutex_;  // peer_abort_, stop_
  std::condition_variable wake_;
  std::optional<std::string> peer_abort_;
  std::vector<std::uint64_t> last_counter_;  // beat() only
  std::vector<std::chrono::steady_clock::time_point> last_change_;
  std::optional<std::string> dead_peer_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kiln::dist
