// Logging for the engine and plugins. Lines go to stderr through spdlog; a live
// progress line on a terminal is cleared before each log line and drawn again
// after it (see progress.h), so the two never interleave.
#pragma once

#include <fmt/format.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace kiln::log {

enum class Level { Debug, Info, Warn, Error };

void write(Level level, std::string_view message);
void set_level(Level level);
// The level a name stands for, in any case: debug, info, warn or warning, error.
std::optional<Level> level_named(std::string_view name);

// Colour of the level names: Auto colours only on a terminal.
enum class Color { Auto, Always, Never };
void set_color(Color color);

// Reads KILN_LOG_LEVEL (a level name) and NO_COLOR (any non-empty value turns
// colour off, https://no-color.org). ConfigError naming KILN_LOG_LEVEL and the
// accepted names when the level is unknown; the level then stays at info.
void configure_from_environment();
bool enabled(Level level);
// Prefix put before every line, e.g. "[rank 1] " in a data-parallel run.
void set_prefix(std::string prefix);

// A listener gets every line that passes the level, prefix included, after it went
// to stderr: the run record copies them into the run's kiln.log artifact. It is
// called under the log's lock, so it must not log itself; what it throws is dropped.
using Listener = std::function<void(Level level, std::string_view line)>;
int add_listener(Listener listener);  // returns a handle for remove_listener
void remove_listener(int handle);

template <class... Args>
void debug(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::Debug)) write(Level::Debug, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::Info)) write(Level::Info, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> format, Args&&... args) {
  write(Level::Warn, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> format, Args&&... args) {
  write(Level::Error, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace kiln::log
