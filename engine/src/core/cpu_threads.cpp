#include <kiln/cpu_threads.h>
#include <kiln/error.h>

#include <omp.h>
#include <sched.h>

#include <atomic>
#include <cstdlib>
#include <string>

namespace kiln {
namespace {

std::atomic<int> g_threads{0};

}  // namespace

int available_cores() {
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  return 1;
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
      threads = available_cores();
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
