// Logging for the engine and plugins. Lines go to stderr through spdlog; a live
// progress line on a terminal is cleared before each log line and drawn again
// after it (see progress.h), so the two never interleave.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>
#include <utility>

namespace kiln::log {

enum class Level { Debug, Info, Warn, Error };

void write(Level level, std::string_view message);
void set_level(Level level);
bool enabled(Level level);
// Prefix put before every line, e.g. "[rank 1] " in a data-parallel run.
void set_prefix(std::string prefix);

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
