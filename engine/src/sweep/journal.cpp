#include <kiln/error.h>
#include <kiln/log.h>
#include <kiln/sweep/journal.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>

#include "sweep/journal_replay.h"

namespace kiln::sweep {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail_io(const fs::path& path, const char* what) {
  throw DataError("journal " + path.string() + ": cannot " + what + ": " + std::strerror(errno));
}

std::string random_hex() {
  static thread_local std::mt19937_64 engine{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", engine(), engine());
}

// Optuna's JournalFileSymlinkLock (optuna/storages/journal/_file.py): the lock is
// `<file>.lock`, made with symlink(2), which fails with EEXIST while another writer
// holds it, even over NFSv2. Waiters sleep 1 ms, doubling up to 100 ms (Optuna: up
// to 1 s; the lock is not fair, and a waiter asleep for a second loses it to a
// writer that retakes it between its ops, as a sweep driver does). A lock whose
// target (the journal: stat follows the link) has not changed for the grace period
// is taken for a dead writer's and broken. Release renames the link to a unique name
// and unlinks that, so of two breakers only one removes it.
class SymlinkLock {
 public:
  SymlinkLock(const fs::path& file, std::chrono::milliseconds grace)
      : lock_(file.string() + ".lock") {
    using Clock = std::chrono::steady_clock;
    auto sleep = std::chrono::microseconds(1000);
    auto last_change = Clock::now();
    auto last_warning = Clock::now();
    std::optional<struct timespec> seen_mtime;
    // The target is the bare file name: the link sits beside the journal, so it
    // resolves to it wherever the directory is mounted.
    const std::string target = file.filename().string();
    while (::symlink(target.c_str(), lock_.c_str()) != 0) {
      if (errno != EEXIST) fail_io(lock_, "create the lock");
      if (Clock::now() - last_warning > std::chrono::seconds(10)) {
        log::warn("journal: waiting more than 10 s for the lock {}", lock_.string());
        last_warning = Clock::now();
      }
      struct stat info {};
      if (::stat(lock_.c_str(), &info) != 0 && ::lstat(lock_.c_str(), &info) != 0) continue;
      if (!seen_mtime || seen_mtime->tv_sec != info.st_mtim.tv_sec ||
          seen_mtime->tv_nsec != info.st_mtim.tv_nsec) {
        seen_mtime = info.st_mtim;
        last_change = Clock::now();
      }
      if (Clock::now() - last_change > grace) {
        log::warn("journal: breaking the lock {}: its journal has not changed for {} ms",
                  lock_.string(), grace.count());
        release();
        sleep = std::chrono::microseconds(1000);
        continue;
      }
      std::this_thread::sleep_for(sleep);
      sleep = std::min<std::chrono::microseconds>(sleep * 2, std::chrono::milliseconds(100));
    }
  }
  ~SymlinkLock() {
    if (!release()) log::warn("journal: the lock {} was broken while held", lock_.string());
  }
  SymlinkLock(const SymlinkLock&) = delete;
  SymlinkLock& operator=(const SymlinkLock&) = delete;

 private:
  bool release() {
    const std::string moved = lock_.string() + random_hex() + ".rename";
    if (::rename(lock_.c_str(), moved.c_str()) != 0) return false;
    ::unlink(moved.c_str());
    return true;
  }

  fs::path lock_;
};

class Descriptor {
 public:
  Descriptor(const fs::path& path, int flags) : fd_(::open(path.c_str(), flags | O_CLOEXEC, 0644)) {
    if (fd_ < 0) fail_io(path, "open it");
  }
  ~Descriptor() { ::close(fd_); }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::uint64_t file_size(const fs::path& path, int fd) {
  struct stat info {};
  if (::fstat(fd, &info) != 0) fail_io(path, "stat it");
  return static_cast<std::uint64_t>(info.st_size);
}

}  // namespace

nlohmann::json optuna_distribution_json(const Distribution& distribution) {
  return journal::parse_python_json(journal::distribution_to_optuna_text(distribution));
}

Journal::Journal(fs::path file, std::string worker_id, JournalOptions options)
    : file_(std::move(file)),
      worker_id_(std::move(worker_id)),
      options_(options),
      replay_(std::make_unique<JournalReplay>()) {
  std::error_code ec;
  if (file_.has_parent_path()) fs::create_directories(file_.parent_path(), ec);
  // Created if missing, as JournalFileBackend does, so that readers find a file.
  Descriptor created(file_, O_WRONLY | O_CREAT | O_APPEND);
}

Journal::~Journal() = default;

void Journal::fail_at_line(std::uint64_t line, const std::string& what) const {
  throw DataError(fmt::format("journal {}:{}: {}", file_.string(), line, what));
}

void Journal::sync() {
  Descriptor in(file_, O_RDONLY);
  const std::uint64_t size = file_size(file_, in.get());
  if (size < replay_->offset) replay_ = std::make_unique<JournalReplay>();  // replaced: start over
  // Read only up to the size seen now (as Optuna does): a writer may be appending.
  std::string pending;
  std::vector<char> block(1 << 20);
  std::uint64_t at = replay_->offset;
  while (at < size) {
    const auto wanted = static_cast<std::size_t>(std::min<std::uint64_t>(block.size(), size - at));
    const ssize_t got = ::pread(in.get(), block.data(), wanted, static_cast<off_t>(at));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) fail_io(file_, "read it");
    at += static_cast<std::uint64_t>(got);
    pending.append(block.data(), static_cast<std::size_t>(got));
    std::size_t begin = 0;
    for (std::size_t end = pending.find('\n'); end != std::string::npos;
         begin = end + 1, end = pending.find('\n', begin)) {
      const std::uint64_t line = replay_->lines + 1;
      try {
        replay_->apply(
            journal::parse_python_json(std::string_view(pending).substr(begin, end - begin)));
      } catch (const journal::LineError& error) {
        replay_ = std::make_unique<JournalReplay>();  // half-applied: start over next time
        fail_at_line(line, error.what());
      } catch (const nlohmann::json::exception& error) {
        replay_ = std::make_unique<JournalReplay>();
        fail_at_line(line, error.what());
      }
      replay_->lines = line;
      replay_->offset += end - begin + 1;
    }
    pending.erase(0, begin);
  }
  // What is left has no '\n': a line being written now, or torn by a writer that
  // died. Optuna's reader leaves it too (and reads it once it is complete).
}

void Journal::drop_torn_tail() {
  Descriptor out(file_, O_RDWR);
  const std::uint64_t size = file_size(file_, out.get());
  std::uint64_t keep = size;
  char byte = '\n';
  while (keep > 0) {
    if (::pread(out.get(), &byte, 1, static_cast<off_t>(keep - 1)) != 1) fail_io(file_, "read it");
    if (byte == '\n') break;
    --keep;
  }
  if (keep == size) return;
  // Under the lock no one is writing, so a last line without '\n' was torn by a
  // writer that died. Appending after it would merge it with the next op into a
  // line no reader can parse; Optuna never applied it, so dropping it loses nothing.
  log::warn("journal {}: dropping {} bytes of a torn last line (a writer died mid-write)",
            file_.string(), size - keep);
  if (::ftruncate(out.get(), static_cast<off_t>(keep)) != 0) fail_io(file_, "truncate it");
  if (::fsync(out.get()) != 0) fail_io(file_, "fsync it");
}

void Journal::append(const std::string& lines) {
  Descriptor out(file_, O_WRONLY | O_APPEND);
  // One write(2) for all ops of a transaction; a short write (a full disk) goes on
  // where it stopped rather than leave half a line.
  std::size_t done = 0;
  while (done < lines.size()) {
    const ssize_t wrote = ::write(out.get(), lines.data() + done, lines.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) fail_io(file_, "append to it");
    done += static_cast<std::size_t>(wrote);
  }
  if (::fsync(out.get()) != 0) fail_io(file_, "fsync it");
}

Study Journal::load(std::string_view study_name) {
  std::lock_guard guard(mutex_);
  sync();
  const journal::StudyRecord* record = replay_->find(study_name);
  if (record == nullptr)
    throw DataError(fmt::format("journal {}: no study '{}'", file_.string(), study_name));
  if (record->directions.size() != 1 || record->directions[0] == 0 || !record->single_valued)
    throw DataError(fmt::format("journal {}: study '{}' has {} objectives; a kiln sweep has one",
                                file_.string(), study_name, record->directions.size()));
  return record->study;
}

std::vector<std::string> Journal::study_names() {
  std::lock_guard guard(mutex_);
  sync();
  return replay_->names();
}

bool Journal::create_study(const std::string& name, Direction direction) {
  std::lock_guard guard(mutex_);
  SymlinkLock lock(file_, options_.lock_grace_period);
  drop_torn_tail();
  sync();
  if (const journal::StudyRecord* existing = replay_->find(name)) {
    if (existing->directions != std::vector<int>{static_cast<int>(direction)})
      throw ConfigError(fmt::format("journal {}: study '{}' exists already and does not {}",
                                    file_.string(), name, to_string(direction)));
    return false;
  }
  nlohmann::ordered_json op;
  op["op_code"] = journal::kCreateStudy;
  op["worker_id"] = worker_id_;
  op["study_name"] = name;
  op["directions"] = {static_cast<int>(direction)};
  const std::string line = journal::dump_python_json(op) + "\n";
  append(line);
  // The line is applied by the next sync, like any other writer's.
  return true;
}

void Journal::with_lock(std::string_view study_name,
                        const std::function<void(JournalTransaction&)>& body) {
  std::lock_guard guard(mutex_);
  SymlinkLock lock(file_, options_.lock_grace_period);
  drop_torn_tail();
  sync();
  const journal::StudyRecord* record = replay_->find(study_name);
  if (record == nullptr)
    throw DataError(fmt::format("journal {}: no study '{}'", file_.string(), study_name));
  JournalTransaction transaction(*this, record->id);
  try {
    body(transaction);
    if (!transaction.lines_.empty()) append(transaction.lines_);
  } catch (...) {
    // The replay holds ops that were not written: read the file again next time.
    replay_ = std::make_unique<JournalReplay>();
    throw;
  }
  // The ops are applied already; step over their lines.
  replay_->offset += transaction.lines_.size();
  replay_->lines += transaction.line_count_;
}

int Journal::create_trial(std::string_view study_name, const TrialDraft& draft) {
  return create_trial_with(study_name, [&](const Study&) { return draft; });
}

int Journal::create_trial_with(std::string_view study_name,
                               const std::function<TrialDraft(const Study&)>& decide) {
  int number = -1;
  with_lock(study_name, [&](JournalTransaction& transaction) {
    number = transaction.create_trial(decide(transaction.study()));
  });
  return number;
}

void Journal::set_param(std::string_view study_name, int trial, const std::string& name,
                        double internal, const Distribution& distribution) {
  with_lock(study_name,
            [&](JournalTransaction& t) { t.set_param(trial, name, internal, distribution); });
}

bool Journal::set_state(std::string_view study_name, int trial, TrialState state,
                        std::optional<double> value) {
  bool changed = false;
  with_lock(study_name, [&](JournalTransaction& t) { changed = t.set_state(trial, state, value); });
  return changed;
}

void Journal::set_intermediate(std::string_view study_name, int trial, std::int64_t step,
                               double value) {
  with_lock(study_name, [&](JournalTransaction& t) { t.set_intermediate(trial, step, value); });
}

void Journal::set_user_attr(std::string_view study_name, int trial, const std::string& key,
                            const nlohmann::json& value) {
  with_lock(study_name, [&](JournalTransaction& t) { t.set_user_attr(trial, key, value); });
}

void Journal::set_system_attr(std::string_view study_name, int trial, const std::string& key,
                              const nlohmann::json& value) {
  with_lock(study_name, [&](JournalTransaction& t) { t.set_system_attr(trial, key, value); });
}

}  // namespace kiln::sweep
