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

}  // namespace kiln::ops
