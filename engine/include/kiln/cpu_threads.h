// Thread count for CPU math (OpenBLAS GEMM and kiln's own loops).
#pragma once

namespace kiln {

// Sets and returns the CPU thread count: `requested` if > 0, else KILN_NUM_THREADS
// if set, else the number of cores available to this process.
int set_cpu_threads(int requested);
int cpu_threads();

}  // namespace kiln
