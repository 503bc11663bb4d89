// Splitting a CPU loop over kiln's OpenMP threads from code that is not compiled
// with OpenMP (headers that tests and .cu files include too).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace kiln::ops {

// Loops of independent elements (elementwise ops, optimizer updates) split over the
// CPU threads from this many elements on; smaller ones are not worth waking them for.
inline constexpr std::int64_t kParallelElements = 1 << 15;

// For a loop over items of `per_item` elements each (rows, columns, samples): the
// item count from which it holds `min_elements`, the min_parallel to split it by.
inline std::int64_t items_for(std::int64_t per_item,
                              std::int64_t min_elements = kParallelElements) {
  return (min_elements + per_item - 1) / (per_item > 0 ? per_item : 1);
}

// body(begin, end) over [0, n) in one contiguous chunk per CPU thread when
// n >= min_parallel; otherwise body(0, n) on the calling thread. For loops whose
// iterations are independent: the result does not depend on the thread count.
void parallel_chunks(std::int64_t n, std::int64_t min_parallel,
                     const std::function<void(std::int64_t, std::int64_t)>& body);

// parallel_chunks over several tensors' elements as one range of sum(sizes):
// body(i, begin, end) for the part [begin, end) of tensor i in a thread's chunk.
// One parallel region for all of them (the optimizers' updates: a model's small
// tensors then split too, and the threads meet once, not once per tensor).
void parallel_pieces(const std::vector<std::int64_t>& sizes, std::int64_t min_parallel,
                     const std::function<void(std::size_t, std::int64_t, std::int64_t)>& body);

}  // namespace kiln::ops
