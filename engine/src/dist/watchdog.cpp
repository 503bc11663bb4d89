#include "dist/watchdog.h"

#include <kiln/error.h>
#include <kiln/log.h>

#include <fmt/format.h>

#include <algorithm>

#include <cstdlib>
#include <sstream>

namespace kiln::dist {
namespace {

std::string key_of(int rank) { return fmt::format("hb.{}", rank); }

// KILN_DIST_TEST_STALL=RANK:SEQUENCE makes RANK stop before its collective
// SEQUENCE, as a hung rank would, until a peer aborts (a test hook).
std::optional<std::pair<int, std::uint64_t>> stall_request() {
  const char* text = std::getenv("KILN_DIST_TEST_STALL");
  if (text == nullptr || *text == '\0') return std::nullopt;
  int rank = -1;
  unsigned long long sequence = 0;
  char extra = 0;
  if (std::sscanf(text, "%d:%llu%c", &rank, &sequence, &extra) != 2)
    throw ConfigError(fmt::format("KILN_DIST_TEST_STALL='{}': expected RANK:SEQUENCE", text));
  return std::pair{rank, static_cast<std::uint64_t>(sequence)};
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string text;
  for (const int r : ranks) text += (text.empty() ? "" : ", ") + std::to_string(r);
  return text;
}

}  // namespace

Watchdog::Watchdog(std::shared_ptr<Store> store, int rank, int size,
                   std::chrono::milliseconds heartbeat)
    : store_(std::move(store)),
      rank_(rank),
      size_(size),
      heartbeat_(heartbeat),
      last_counter_(static_cast<std::size_t>(size), 0),
      last_change_(static_cast<std::size_t>(size), std::chrono::steady_clock::now()) {
  publish("run");
  thread_ = std::thread([this] { beat(); });
}

Watchdog::~Watchdog() {
  linger_after_abort();
  stop();
}

// Rank 0 may be serving the store (tcp:). Leaving at once after a failure would
// take the board away from ranks still diagnosing theirs, and they would blame
// rank 0 ("store unreachable") instead of the rank at fault. So it stays, beating,
// until every other rank has aborted too, for at most six heartbeats.
void Watchdog::linger_after_abort() {
  if (rank_ != 0 || size_ == 1) return;
  {
    std::lock_guard lock(publish_mutex_);
    if (!state_.starts_with("abort")) return;
  }
  const auto deadline = std::chrono::steady_clock::now() + heartbeat_ * 6;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      const auto board = read_board();
      if (std::all_of(board.begin() + 1, board.end(),
                      [](const auto& entry) { return entry && entry->state.starts_with("abort"); }))
        return;
    } catch (const std::exception&) {
      return;  // the store is gone already
    }
    std::this_thread::sleep_for(heartbeat_ / 5);
  }
}

void Watchdog::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stop_) return;
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Watchdog::publish(const std::string& state) {
  std::lock_guard lock(publish_mutex_);
  if (state_.starts_with("abort") && state == "run") return;  // an abort is final
  state_ = state;
  store_->set(key_of(rank_), fmt::format("{} {} {}", ++counter_, entered_.load(), state_));
}

void Watchdog::beat() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, heartbeat_, [this] { return stop_; })) {
    lock.unlock();
    std::optional<std::string> abort, dead;
    try {
      publish("run");
      const auto board = read_board();
      const auto now = std::chrono::steady_clock::now();
      for (std::size_t r = 0; r < board.size(); ++r) {
        if (static_cast<int>(r) == rank_ || !board[r]) continue;
        if (!abort && board[r]->state.starts_with("abort"))
          abort = fmt::format("rank {} aborted: {}", r, board[r]->state.substr(6));
        if (board[r]->counter != last_counter_[r]) {
          last_counter_[r] = board[r]->counter;
          last_change_[r] = now;
        } else if (!dead && now - last_change_[r] > heartbeat_ * 10) {
          dead = fmt::format("rank {}: no heartbeat for {:.1f} s, presumed dead", r,
                             std::chrono::duration<double>(now - last_change_[r]).count());
        }
      }
    } catch (const std::exception& error) {
      abort = fmt::format("the rendezvous store is unreachable ({})", error.what());
    }
    lock.lock();
    dead_peer_ = dead;
    if (abort && !peer_abort_) {
      peer_abort_ = abort;
      log::debug("watchdog: {}", *abort);
    }
  }
}

std::optional<std::string> Watchdog::peer_abort() const {
  std::lock_guard lock(mutex_);
  return peer_abort_;
}

std::optional<std::string> Watchdog::dead_peer() const {
  std::lock_guard lock(mutex_);
  return dead_peer_;
}

std::vector<std::optional<Watchdog::Entry>> Watchdog::read_board() {
  std::vector<std::optional<Entry>> board(static_cast<std::size_t>(size_));
  for (int r = 0; r < size_; ++r) {
    const auto value = store_->try_get(key_of(r));
    if (!value) continue;
    std::istringstream in(*value);
    Entry entry;
    in >> entry.counter >> entry.sequence;
    in.get();
    std::getline(in, entry.state);
    board[static_cast<std::size_t>(r)] = entry;
  }
  return board;
}

void Watchdog::stall_if_asked(std::uint64_t sequence) {
  static const auto request = stall_request();
  if (!request || request->first != rank_ || request->second != sequence) return;
  log::warn("test hook KILN_DIST_TEST_STALL: rank {} stalls before collective #{}", rank_,
            sequence);
  while (!peer_abort()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

void Watchdog::enter(std::uint64_t sequence, const char* name) {
  entered_ = sequence - 1;
  stall_if_asked(sequence);
  if (auto abort = peer_abort())
    throw StageError(
        fmt::format("{} #{} not started on rank {}: {}", name, sequence, rank_, *abort));
  entered_ = sequence;
}

std::string Watchdog::diagnose(std::uint64_t sequence, const std::string& what, double seconds,
                               const std::string& cause) {
  std::string head =
      fmt::format("{} #{} failed on rank {} after {:.1f} s", what, sequence, rank_, seconds);
  std::vector<std::optional<Entry>> before, after;
  try {
    before = read_board();
    std::this_thread::sleep_for(heartbeat_ * 5 / 2);
    after = read_board();
  } catch (const std::exception& error) {
    return fmt::format(
        "{}: {}; the rendezvous store is unreachable too ({}), so rank 0, which "
        "serves it, is presumably dead",
        head, cause, error.what());
  }
  std::vector<int> missing;
  std::vector<std::string> details;
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    const auto& a = after[static_cast<std::size_t>(r)];
    const auto& b = before[static_cast<std::size_t>(r)];
    if (!a) {
      missing.push_back(r);
      details.push_back(fmt::format("rank {} never reached the rendezvous", r));
    } else if (a->state.starts_with("abort")) {
      // Only the peer's own head line: its view of the others would nest.
      const std::string why = a->state.substr(6);
      details.push_back(fmt::format("rank {} aborted ({})", r, why.substr(0, why.find(" ["))));
    } else if (b && b->counter == a->counter) {
      missing.push_back(r);
      details.push_back(fmt::format(
          "rank {}: no heartbeat for {:.1f} s, presumed dead (last entered collective #{})", r,
          heartbeat_.count() * 2.5e-3, a->sequence));
    } else if (a->sequence < sequence) {
      missing.push_back(r);
      details.push_back(
          fmt::format("rank {} is alive but did not arrive (last entered #{})", r, a->sequence));
    }
  }
  std::string text = head;
  if (!missing.empty())
    text += fmt::format(": rank{} {} did not arrive", missing.size() > 1 ? "s" : "",
                        rank_list(missing));
  if (!details.empty()) {
    text += " [";
    for (std::size_t i = 0; i < details.size(); ++i) text += (i ? "; " : "") + details[i];
    text += "]";
  }
  return text + fmt::format(" (backend: {})", cause);
}

void Watchdog::mark_aborted(const std::string& why) {
  try {
    publish("abort " + why);
  } catch (const std::exception&) {
    // The store is gone with its host; the others find out the same way.
  }
}

}  // namespace kiln::dist
