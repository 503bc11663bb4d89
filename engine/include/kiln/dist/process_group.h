// The ranks of a data-parallel job and the collectives kiln needs between them:
// all-reduce (sum, average) of float32 data, broadcast, barrier, and all-gather of
// small byte strings. Two backends behind one interface: Gloo over TCP
// for CPU tensors, NCCL for CUDA tensors (built with CUDA); the device chooses.
//
// Every collective carries a sequence number (the same on every rank) and runs
// under the watchdog: it must finish within `timeout`, or this rank throws a
// StageError naming the collective, its number and the ranks that did not
// arrive; a rank that died is named as dead (its heartbeat stopped). A rank that
// sees a peer abort stops at its next collective. Library code never exits the
// process: the error unwinds to the CLI, which exits non-zero.
//
// Collectives are issued by one thread at a time (the trainer's main thread, or
// its communication thread while the main thread waits for it).
#pragma once

#include <kiln/dist/env.h>
#include <kiln/dist/store.h>
#include <kiln/error.h>
#include <kiln/tensor/tensor.h>

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace kiln::dist {

enum class ReduceOp { Sum, Avg };

struct GroupOptions {
  // Longest a collective may take before the job is declared stuck. Env
  // KILN_COLLECTIVE_TIMEOUT_S, or the train stage's collective_timeout_s.
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  // How often each rank proves it is alive in the store.
  std::chrono::milliseconds heartbeat{std::chrono::milliseconds(500)};
  // Gloo's TCP transport binds this host name or address (env KILN_GLOO_HOSTNAME;
  // default: this machine's host name).
  std::string hostname;
  // The job's secret, which a tcp: store's clients prove (env KILN_RDZV_SECRET;
  // `kiln run --nproc` sets it). Never logged.
  std::string rdzv_secret;
};

class Watchdog;
struct GroupState;

class ProcessGroup {
 public:
  virtual ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  virtual const char* backend() const noexcept = 0;
  std::chrono::milliseconds timeout() const noexcept;
  // Every rank must set the same timeout at the same point.
  void set_timeout(std::chrono::milliseconds timeout) noexcept;
  // Collectives issued so far (by this group and the groups made from it).
  std::uint64_t sequence() const noexcept;

  // In place, over every rank. Float32 tensors on the backend's device.
  void all_reduce(Tensor& tensor, ReduceOp op = ReduceOp::Sum);
  void all_reduce(std::span<float> data, ReduceOp op = ReduceOp::Sum);
  void broadcast(Tensor& tensor, int root = 0);
  void barrier();
  // Each rank's `bytes`, by rank (small: metadata, not tensors).
  std::vector<std::string> all_gather(const std::string& bytes);

  // Waits, without a time limit, until `ready()` (polled), e.g. for rank 0 to
  // finish a stage only it runs; StageError naming `what` as soon as a rank
  // aborts or stops its heartbeat.
  void wait_for(const std::function<bool()>& ready, const std::string& what);
  // Tells the other ranks this one gives up (they stop at their next collective
  // or wait); `why` travels to their error messages, and `kind` makes theirs fail
  // with the same exit code.
  void announce_failure(const std::string& why, ErrorKind kind = ErrorKind::Stage);
  // The rendezvous store, for small coordination keys (the runner's).
  Store& store();

  // A group over the same ranks for tensors on the CUDA `device` (NCCL, its
  // communicator set up through this group's store). It shares this group's
  // timeout, watchdog and collective numbering, and must not outlive it. Every
  // rank calls it at the same point: the set-up counts as a collective.
  // ConfigError in a build without CUDA.
  std::unique_ptr<ProcessGroup> device_group(Device device);

  // Ends the job cleanly: a barrier, then the heartbeats stop. Without it (an error
  // unwinding) the group is torn down without waiting for anyone.
  void shutdown();

 protected:
  ProcessGroup(int rank, int size, std::shared_ptr<GroupState> state);
  virtual void do_all_reduce(float* data, std::size_t count, ReduceOp op, bool on_device) = 0;
  virtual void do_broadcast(void* data, std::size_t bytes, int root, bool on_device) = 0;
  virtual void do_barrier() = 0;
  virtual std::vector<std::string> do_all_gather(const std::string& bytes) = 0;
  // Tag for the backend's messages: unique per collective, the same on every rank.
  std::uint32_t tag() const noexcept { return static_cast<std::uint32_t>(sequence()); }

 private:
  template <typename F>
  auto guarded(const char* name, std::size_t bytes, F&& body);

  int rank_, size_;
  // Timeout, collective counter, first failure, watchdog and store: shared by the
  // groups over the same ranks (dist/backends.h).
  std::shared_ptr<GroupState> state_;
};

// Joins the job `env` describes through `rendezvous` ("file:DIR" or
// "tcp:HOST:PORT"). Every rank calls it; it returns once all are connected, or
// throws StageError after options.timeout naming the ranks still missing. Sets
// SIGPIPE to ignored: a dead peer's socket must give an error, not a signal.
std::unique_ptr<ProcessGroup> init_process_group(const DistEnv& env, const std::string& rendezvous,
                                                 GroupOptions options = {});

// GroupOptions with the environment's overrides (KILN_COLLECTIVE_TIMEOUT_S,
// KILN_GLOO_HOSTNAME, KILN_RDZV_SECRET); ConfigError naming the variable for a bad value.
GroupOptions group_options_from_env(const EnvLookup& env = process_env());

}  // namespace kiln::dist
