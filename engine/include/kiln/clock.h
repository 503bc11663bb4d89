// Wall-clock helpers for records: ISO 8601 UTC strings and Unix milliseconds.
#pragma once

#include <cstdint>
#include <string>

namespace kiln {

std::int64_t unix_millis();
// "2026-11-27T03:17:33Z" for the current time, or for `millis` when given.
std::string iso8601_utc();
std::string iso8601_utc(std::int64_t millis);

}  // namespace kiln
