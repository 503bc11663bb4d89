#include <kiln/clock.h>

#include <fmt/chrono.h>

#include <chrono>
#include <ctime>

namespace kiln {

std::int64_t unix_millis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string iso8601_utc(std::int64_t millis) {
  const std::time_t seconds = static_cast<std::time_t>(millis / 1000);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", utc);
}

std::string iso8601_utc() { return iso8601_utc(unix_millis()); }

}  // namespace kiln
