// Logging and the live progress line share one lock and one terminal: a log line
// first clears the live line, then the live line is drawn again below it.
#include "console.h"

#include <kiln/error.h>
#include <kiln/log.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

namespace kiln {
namespace {

spdlog::level::level_enum to_spdlog(log::Level level) {
  switch (level) {
    case log::Level::Debug:
      return spdlog::level::debug;
    case log::Level::Info:
      return spdlog::level::info;
    case log::Level::Warn:
      return spdlog::level::warn;
    case log::Level::Error:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

bool no_color_requested() {
  const char* value = std::getenv("NO_COLOR");
  return value != nullptr && *value != '\0';
}

struct Console {
  std::mutex mutex;
  std::string live_line;  // empty: no live line on screen
  std::string prefix;
  std::shared_ptr<spdlog::sinks::stderr_color_sink_mt> sink;
  std::shared_ptr<spdlog::logger> logger;
  std::map<int, log::Listener> listeners;
  int next_listener = 1;

  Console() {
    // Not registered in spdlog's global registry: a process may hold two copies
    // of this console (a test linking the engine statically and a plugin
    // bringing libkiln.so), and a second registration under one name throws.
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    logger = std::make_shared<spdlog::logger>("kiln", sink);
    logger->set_pattern("%Y-%m-%d %H:%M:%S %^%l%$ %v");
    logger->set_level(spdlog::level::info);
    // Applied here too for the engine used as a library; the CLI calls
    // log::configure_from_environment() to refuse an unknown level.
    if (const char* name = std::getenv("KILN_LOG_LEVEL"))
      if (const auto level = log::level_named(name)) logger->set_level(to_spdlog(*level));
    if (no_color_requested()) sink->set_color_mode(spdlog::color_mode::never);
  }

  void clear_live_line() {
    if (!live_line.empty()) std::fputs("\r\033[K", stderr);
  }
  void draw_live_line() {
    if (!live_line.empty()) {
      std::fputs(live_line.c_str(), stderr);
      std::fflush(stderr);
    }
  }
};

Console& console() {
  static Console instance;
  return instance;
}

using Clock = std::chrono::steady_clock;

class LiveProgress final : public Progress {
 public:
  explicit LiveProgress(std::string stage) : stage_(std::move(stage)), start_(Clock::now()) {}
  ~LiveProgress() override { finish(); }

  void update(const ProgressUpdate& update) override {
    const auto now = Clock::now();
    const bool last = update.total_steps > 0 && update.step >= update.total_steps;
    if (!last && now - drawn_ < std::chrono::milliseconds(100)) return;
    drawn_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    Console& c = console();
    std::lock_guard lock(c.mutex);
    c.clear_live_line();
    c.live_line = c.prefix + format_progress(stage_, update, elapsed);
    c.draw_live_line();
  }

  void finish() override {
    Console& c = console();
    std::lock_guard lock(c.mutex);
    c.clear_live_line();
    c.live_line.clear();
    std::fflush(stderr);
  }

 private:
  std::string stage_;
  Clock::time_point start_;
  Clock::time_point drawn_{};
};

class PlainProgress final : public Progress {
 public:
  explicit PlainProgress(std::string stage)
      : stage_(std::move(stage)), start_(Clock::now()), printed_(start_) {
    interval_ = std::chrono::seconds(10);
    if (const char* seconds = std::getenv("KILN_PROGRESS_SECONDS"))
      interval_ = std::chrono::duration<double>(std::atof(seconds));
  }

  void update(const ProgressUpdate& update) override {
    const auto now = Clock::now();
    const bool last = update.total_steps > 0 && update.step >= update.total_steps;
    if (!last && now - printed_ < interval_) return;
    if (update.step == last_printed_step_) return;
    printed_ = now;
    last_printed_step_ = update.step;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    log::info("{}", format_progress(stage_, update, elapsed));
  }
  void finish() override {}

 private:
  std::string stage_;
  Clock::time_point start_;
  Clock::time_point printed_;
  std::chrono::duration<double> interval_;
  std::int64_t last_printed_step_ = -1;
};

std::string format_duration(double seconds) {
  const auto total = static_cast<long long>(std::llround(seconds));
  if (total >= 3600)
    return fmt::format("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60);
  return fmt::format("{}:{:02}", total / 60, total % 60);
}

}  // namespace

namespace log {

void write(Level level, std::string_view message) {
  Console& c = console();
  std::lock_guard lock(c.mutex);
  c.clear_live_line();
  if (c.prefix.empty())
    c.logger->log(to_spdlog(level), "{}", message);
  else
    c.logger->log(to_spdlog(level), "{}{}", c.prefix, message);
  c.logger->flush();
  c.draw_live_line();
  if (c.listeners.empty() || !c.logger->should_log(to_spdlog(level))) return;
  const std::string line = c.prefix + std::string(message);
  for (const auto& [handle, listener] : c.listeners) {
    try {
      listener(level, line);
    } catch (...) {  // a failing copy of the log must not fail the code that logs
    }
  }
}

int add_listener(Listener listener) {
  Console& c = console();
  std::lock_guard lock(c.mutex);
  const int handle = c.next_listener++;
  c.listeners.emplace(handle, std::move(listener));
  return handle;
}

void remove_listener(int handle) {
  Console& c = console();
  std::lock_guard lock(c.mutex);
  c.listeners.erase(handle);
}

void set_level(Level level) { console().logger->set_level(to_spdlog(level)); }

std::optional<Level> level_named(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "debug") return Level::Debug;
  if (lower == "info") return Level::Info;
  if (lower == "warn" || lower == "warning") return Level::Warn;
  if (lower == "error") return Level::Error;
  return std::nullopt;
}

void set_color(Color color) {
  static constexpr spdlog::color_mode kModes[] = {
      spdlog::color_mode::automatic, spdlog::color_mode::always, spdlog::color_mode::never};
  console().sink->set_color_mode(kModes[static_cast<int>(color)]);
}

void configure_from_environment() {
  if (no_color_requested()) set_color(Color::Never);
  const char* name = std::getenv("KILN_LOG_LEVEL");
  if (name == nullptr) return;
  const auto level = level_named(name);
  if (!level)
    throw ConfigError(fmt::format(
        "KILN_LOG_LEVEL: unknown log level '{}'; accepted (any case): debug, info, warn, "
        "warning, error",
        name));
  set_level(*level);
}
bool enabled(Level level) { return console().logger->should_log(to_spdlog(level)); }

void set_prefix(std::string prefix) {
  Console& c = console();
  std::lock_guard lock(c.mutex);
  c.prefix = std::move(prefix);
}

}  // namespace log

bool stderr_is_live_terminal() {
  if (std::getenv("KILN_PLAIN_PROGRESS") != nullptr) return false;
  return ::isatty(STDERR_FILENO) == 1;
}

std::unique_ptr<Progress> make_progress(std::string stage_name) {
  if (stderr_is_live_terminal()) return std::make_unique<LiveProgress>(std::move(stage_name));
  return std::make_unique<PlainProgress>(std::move(stage_name));
}

std::string format_progress(const std::string& stage_name, const ProgressUpdate& update,
                            double elapsed_seconds) {
  std::string line = stage_name;
  if (update.epochs > 0) line += fmt::format("  epoch {}/{}", update.epoch, update.epochs);
  if (update.total_steps > 0) {
    const double done = static_cast<double>(update.step) / static_cast<double>(update.total_steps);
    line += fmt::format("  step {}/{} {:3.0f}%", update.step, update.total_steps, 100.0 * done);
    if (update.step > 0 && update.step < update.total_steps)
      line += "  ETA " + format_duration(elapsed_seconds * (1.0 - done) / done);
  } else if (update.step > 0) {
    line += fmt::format("  step {}", update.step);
  }
  if (update.loss) line += fmt::format("  loss {:.4f}", *update.loss);
  if (update.samples_per_s) line += fmt::format("  {:.0f} samples/s", *update.samples_per_s);
  if (!update.note.empty()) line += "  " + update.note;
  return line;
}

}  // namespace kiln
