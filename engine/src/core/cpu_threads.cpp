#include <kiln/cpu_threads.h>
#include <kiln/error.h>
#include <kiln/fs.h>

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <thread>

namespace kiln {
namespace {

std::atomic<int> g_threads{0};

// A /proc or /sys file, or "" where there is none (no cgroup v2, another OS).
std::string read_text(const std::string& path) {
  try {
    return read_file(path);
  } catch (const DataError&) {
    return "";
  }
}

// This process's cgroup v2 cpu.max ("0::/path" in /proc/self/cgroup), or "".
std::string own_cpu_max() {
  std::istringstream lines(read_text("/proc/self/cgroup"));
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with("0::")) return read_text("/sys/fs/cgroup" + line.substr(3) + "/cpu.max");
  return "";
}

struct Ticks {
  std::uint64_t busy = 0, total = 0;
};

// Per CPU ("cpuN user nice system idle iowait irq softirq steal ..."): idle and
// iowait are idle, the rest busy.
std::map<int, Ticks> per_cpu_ticks(std::string_view stat) {
  std::map<int, Ticks> out;
  std::istringstream lines{std::string(stat)};
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("cpu") || line.size() < 4 || line[3] < '0' || line[3] > '9') continue;
    std::istringstream fields(line.substr(3));
    int cpu = -1;
    fields >> cpu;
    Ticks ticks;
    std::uint64_t value = 0;
    for (int field = 0; field < 8 && (fields >> value); ++field) {
      ticks.total += value;
      if (field != 3 && field != 4) ticks.busy += value;
    }
    if (cpu >= 0) out[cpu] = ticks;
  }
  return out;
}

}  // namespace

std::vector<int> affinity_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0)
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  return cpus;
}

int quota_cores(std::string_view cpu_max) {
  const auto space = cpu_max.find(' ');
  if (space == std::string_view::npos) return 0;
  const std::string_view quota = cpu_max.substr(0, space);
  std::string_view period = cpu_max.substr(space + 1);
  while (!period.empty() && (period.back() == '\n' || period.back() == ' '))
    period.remove_suffix(1);
  std::uint64_t q = 0, p = 0;
  if (std::from_chars(quota.data(), quota.data() + quota.size(), q).ec != std::errc() ||
      std::from_chars(period.data(), period.data() + period.size(), p).ec != std::errc() ||
      q == 0 || p == 0)
    return 0;  // "max": no quota
  return static_cast<int>((q + p - 1) / p);
}

int available_cores() {
  const auto cpus = affinity_cpus();
  const int affinity = cpus.empty() ? 1 : static_cast<int>(cpus.size());
  const int quota = quota_cores(own_cpu_max());
  return quota > 0 && quota < affinity ? quota : affinity;
}

double busy_cores(std::string_view before, std::string_view after, const std::vector<int>& cpus) {
  const auto start = per_cpu_ticks(before), end = per_cpu_ticks(after);
  double busy = 0;
  for (int cpu : cpus) {
    const auto a = start.find(cpu), b = end.find(cpu);
    if (a == start.end() || b == end.end() || b->second.total <= a->second.total) continue;
    const double passed = static_cast<double>(b->second.total - a->second.total);
    busy += static_cast<double>(b->second.busy - a->second.busy) / passed;
  }
  return busy;
}

double measure_busy_cores(std::chrono::milliseconds window) {
  const std::string before = read_text("/proc/stat");
  if (before.empty()) return 0;
  std::this_thread::sleep_for(window);
  return busy_cores(before, read_text("/proc/stat"), affinity_cpus());
}

std::string wait_policy_reason() {
  const char* reason = std::getenv("KILN_WAIT_POLICY_REASON");
  return reason != nullptr ? reason : "";
}

double busy_cores_at_start() {
  const char* value = std::getenv("KILN_BUSY_CORES");
  if (value == nullptr) return 0;
  char* end = nullptr;
  const double busy = std::strtod(value, &end);
  return end != value && busy > 0 ? busy : 0;
}

int set_cpu_threads(int requested) {
  int threads = requested;
  if (threads <= 0) {
    if (const char* value = std::getenv("KILN_NUM_THREADS")) {
      try {
        threads = std::stoi(value);
      } catch (const std::exception&) {
        throw ConfigError(std::string("KILN_NUM_THREADS: expected a positive integer, got '") +
                          value + "'");
      }
      if (threads <= 0)
        throw ConfigError(std::string("KILN_NUM_THREADS: expected a positive integer, got '") +
                          value + "'");
    } else {
      // Threads beyond the cores left idle wait for cores that others hold: with
      // two busy loops on 2 cores, the MLP ran at 36k or 94k samples/s on 2
      // threads (waiting passively) and at 100k on 1.
      const auto busy = static_cast<int>(std::lround(busy_cores_at_start()));
      threads = std::max(1, available_cores() - busy);
    }
  }
  omp_set_num_threads(threads);  // oneDNN's GEMMs and convolutions run on OpenMP
  g_threads.store(threads);
  return threads;
}

int cpu_threads() {
  const int threads = g_threads.load();
  return threads > 0 ? threads : set_cpu_threads(0);
}

}  // namespace kiln
