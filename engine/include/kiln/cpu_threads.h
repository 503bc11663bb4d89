// Thread count for CPU math (oneDNN's GEMMs and convolutions, kiln's own loops).
#pragma once

namespace kiln {

// Sets and returns the CPU thread count: `requested` if > 0, else KILN_NUM_THREADS
// if set, else the number of cores available to this process.
int set_cpu_threads(int requested);
int cpu_threads();
// The cores this process may run on (its CPU affinity: Slurm's binding, taskset).
int available_cores();

}  // namespace kiln
