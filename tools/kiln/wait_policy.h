// The OpenMP wait policy of a command that trains, chosen when it starts.
//
// libgomp's threads spin while they wait for work (its default, "active"). On
// idle cores that is the fastest choice; on cores that other processes keep busy,
// a spinning thread holds a core that the thread it waits for needs, and kiln's MLP
// fell from 72k to 1.7k samples/s with two busy loops on 2 cores
// (benchmarks/RESULTS.md). libgomp reads OMP_WAIT_POLICY once, when it loads, so
// the policy cannot change inside a running kiln: a command that finds its cores
// busy runs itself again, with the same arguments, under OMP_WAIT_POLICY=PASSIVE.
#pragma once

namespace kiln::cli {

// main() hands its arguments over first, for the re-exec.
void remember_arguments(char** argv);

// In `kiln run`, `kiln sweep` and `kiln bench`, before anything else: unless
// OMP_WAIT_POLICY or GOMP_SPINCOUNT is set (the user's choice), measures other
// processes' load on this process's cores over 100 ms, and if it reaches half a
// core, execs this kiln again with OMP_WAIT_POLICY=PASSIVE, the measurement in
// KILN_BUSY_CORES (the default thread count leaves those cores out:
// kiln::set_cpu_threads) and its reason in KILN_WAIT_POLICY_REASON (the train
// stage's first line names it: kiln::wait_policy_reason). Returns when nothing
// changes. A kiln started by one that chose (its ranks, sweep workers and bench
// runs) keeps that choice.
void choose_wait_policy();

}  // namespace kiln::cli
