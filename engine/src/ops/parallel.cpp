#include "ops/parallel.h"

#include <omp.h>

#include <algorithm>

namespace kiln::ops {

void parallel_chunks(std::int64_t n, std::int64_t min_parallel,
                     const std::function<void(std::int64_t, std::int64_t)>& body) {
  if (n < min_parallel || omp_get_max_threads() == 1) {
    body(0, n);
    return;
  }
#pragma omp parallel
  {
    const std::int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
    const std::int64_t chunk = (n + threads - 1) / threads;
    const std::int64_t begin = std::min(n, thread * chunk), end = std::min(n, begin + chunk);
    if (begin < end) body(begin, end);
  }
}

void parallel_pieces(const std::vector<std::int64_t>& sizes, std::int64_t min_parallel,
                     const std::function<void(std::size_t, std::int64_t, std::int64_t)>& body) {
  std::int64_t total = 0;
  for (const std::int64_t size : sizes) total += size;
  parallel_chunks(total, min_parallel, [&](std::int64_t begin, std::int64_t end) {
    std::int64_t start = 0;  // of tensor i in the whole range
    for (std::size_t i = 0; i < sizes.size() && start < end; start += sizes[i], ++i) {
      const std::int64_t lo = std::max(begin, start), hi = std::min(end, start + sizes[i]);
      if (lo < hi) body(i, lo - start, hi - start);
    }
  });
}

}  // namespace kiln::ops
