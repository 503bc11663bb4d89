#include "data/resident_cache.h"

#include <kiln/data/loader.h>

#include <algorithm>
#include <list>
#include <mutex>
#include <numeric>
#include <utility>

namespace kiln::data {
namespace detail {
namespace {

struct Kept {
  ResidentKey key;
  SharedResident arrays;
  std::size_t bytes = 0;
};

// Process-wide: the loaders of one process (its trials, one after another, or a
// train stage's training and validation loaders) share what is kept.
struct Cache {
  std::mutex mutex;
  int retentions = 0;         // ResidentDataRetention objects alive
  std::size_t max_bytes = 0;  // the first one's limit
  std::list<Kept> kept;       // most recently used first
};

Cache& cache() {
  static Cache instance;
  return instance;
}

std::size_t bytes_of(const ResidentArrays& arrays) {
  return std::accumulate(arrays.begin(), arrays.end(), std::size_t{0},
                         [](std::size_t sum, const auto& array) { return sum + array.size(); });
}

}  // namespace

SharedResident kept_resident(const ResidentKey& key) {
  Cache& c = cache();
  const std::scoped_lock lock(c.mutex);
  const auto found =
      std::find_if(c.kept.begin(), c.kept.end(), [&](const Kept& k) { return k.key == key; });
  if (found == c.kept.end()) return nullptr;
  c.kept.splice(c.kept.begin(), c.kept, found);
  return c.kept.front().arrays;
}

void keep_resident(const ResidentKey& key, SharedResident arrays) {
  const std::size_t bytes = bytes_of(*arrays);
  Cache& c = cache();
  const std::scoped_lock lock(c.mutex);
  if (c.retentions == 0 || bytes > c.max_bytes) return;
  std::erase_if(c.kept, [&](const Kept& k) { return k.key == key; });
  c.kept.push_front({key, std::move(arrays), bytes});
  std::size_t total = 0;
  for (auto it = c.kept.begin(); it != c.kept.end();) {
    if (total + it->bytes > c.max_bytes) {
      it = c.kept.erase(it);
      continue;
    }
    total += it->bytes;
    ++it;
  }
}

}  // namespace detail

ResidentDataRetention::ResidentDataRetention(std::size_t max_bytes) {
  detail::Cache& c = detail::cache();
  const std::scoped_lock lock(c.mutex);
  if (c.retentions++ == 0) c.max_bytes = max_bytes;
}

ResidentDataRetention::~ResidentDataRetention() {
  detail::Cache& c = detail::cache();
  const std::scoped_lock lock(c.mutex);
  if (--c.retentions == 0) c.kept.clear();
}

}  // namespace kiln::data
