// Thread count for CPU math (oneDNN's GEMMs and convolutions, kiln's own loops), and
// what the machine leaves this process: its cores and how busy others keep them.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

// Sets and returns the CPU thread count: `requested` if > 0, else KILN_NUM_THREADS
// if set, else the number of cores available to this process less those other
// processes kept busy when kiln started (busy_cores_at_start, rounded), at least 1.
int set_cpu_threads(int requested);
int cpu_threads();
// The cores this process may run on: its CPU affinity (Slurm's binding, taskset),
// lowered to its cgroup's CPU quota where one is set (a container's --cpus).
int available_cores();

// The CPUs of this process's affinity mask.
std::vector<int> affinity_cpus();
// Cores that a cgroup v2 `cpu.max` text allows ("150000 100000" -> 2, rounded up),
// or 0 for no quota ("max 100000", empty or unreadable text).
int quota_cores(std::string_view cpu_max);
// Cores kept busy, on average, on `cpus` between two readings of /proc/stat
// (`before`, `after`): the non-idle share of the ticks that passed, summed over
// those CPUs. CPUs missing from either reading count as idle.
double busy_cores(std::string_view before, std::string_view after, const std::vector<int>& cpus);
// The same, measured now: /proc/stat read twice, `window` apart, over this
// process's CPUs. Meant for a process that is itself idle meanwhile, so the
// result is other processes' load. 0 where /proc/stat cannot be read.
double measure_busy_cores(std::chrono::milliseconds window);

// Why OpenMP threads wait passively in this process when kiln chose it at start
// (`kiln run` and `kiln sweep` on busy cores, tools/kiln/wait_policy.h): e.g.
// "other processes kept 1.9 of this process's 2 cores busy"; empty otherwise.
std::string wait_policy_reason();
// How many of this process's cores other processes kept busy when kiln chose its
// wait policy at start (carried in KILN_BUSY_CORES), or 0 where it found them quiet
// or did not measure.
double busy_cores_at_start();

}  // namespace kiln
