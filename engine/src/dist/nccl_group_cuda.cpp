// The NCCL backend (CUDA builds): one communicator per process on the GPU the
// trainer uses (ProcessGroup::device_group), created from a unique id that rank 0
// draws and hands over through the rendezvous store. Collectives run on the
// group's own stream, which waits for the device's compute stream through an
// event; the compute stream in turn waits for the collective through
// another event, so the host goes on at once and only a read of the result on the
// host (a device-to-host copy on the compute stream) waits for it. A monitor
// thread polls the collectives in flight, so that the watchdog's timeout can abort
// the communicator (NCCL itself would wait forever for a rank that never comes),
// which also frees a host stuck reading a result; the next collective on this
// rank then fails with the reason. Barrier and all-gather of metadata go through
// the store, not the GPU. Host code only (no kernels), so a plain C++ file,
// compiled in CUDA builds.
#ifdef KILN_HAVE_CUDA
#include <kiln/error.h>

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "dist/backends.h"
#include "tensor/cuda_context.h"

namespace kiln::dist {
namespace {

void check(ncclResult_t result, const char* what) {
  if (result != ncclSuccess && result != ncclInProgress)
    throw StageError(std::string(what) + ": " + ncclGetErrorString(result));
}

class NcclProcessGroup final : public ProcessGroup {
 public:
  NcclProcessGroup(int rank, int size, Device device, std::shared_ptr<GroupState> state,
                   const std::string& id_key)
      : ProcessGroup(rank, size, state), store_(state->store), device_(device) {
    int devices = 0;
    cuda::check(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
    if (device.index >= devices)
      throw ConfigError("rank " + std::to_string(rank) + " needs " + device.str() +
                        ", but this node has " + std::to_string(devices) + " GPU(s)");
    compute_ = cuda::stream(device_);  // also makes the device current
    ncclUniqueId id;
    if (rank == 0) {
      check(ncclGetUniqueId(&id), "ncclGetUniqueId");
      store_->set(id_key, std::string(id.internal, sizeof id.internal));
    } else {
      const std::string bytes = store_->get(id_key, timeout());
      if (bytes.size() != sizeof id.internal)
        throw StageError("rendezvous: NCCL unique id has the wrong size");
      std::memcpy(id.internal, bytes.data(), sizeof id.internal);
    }
    // Non-blocking communicator: every call returns at once and can be aborted.
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    check(ncclCommInitRankConfig(&comm_, size, id, rank, &config), "ncclCommInitRankConfig");
    wait_comm("ncclCommInitRank");
    cuda::check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    cuda::check(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming), "cudaEventCreate");
    monitor_ = std::thread([this] { monitor(); });
  }

  ~NcclProcessGroup() override {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    if (monitor_.joinable()) monitor_.join();
    if (comm_ != nullptr) ncclCommAbort(comm_);  // finalize could wait on dead peers
    for (const InFlight& collective : in_flight_) cudaEventDestroy(collective.done);
    for (cudaEvent_t event : spare_events_) cudaEventDestroy(event);
    if (ready_ != nullptr) cudaEventDestroy(ready_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  const char* backend() const noexcept override { return "nccl"; }

 protected:
  void do_all_reduce(float* data, std::size_t count, ReduceOp op, bool on_device) override {
    check_device(on_device);
    if (count == 0) return;
    std::lock_guard lock(mutex_);
    order_after_compute();
    check(ncclAllReduce(data, data, count, ncclFloat32, op == ReduceOp::Avg ? ncclAvg : ncclSum,
                        comm_, stream_),
          "ncclAllReduce");
    finish("ncclAllReduce");
  }

  void do_broadcast(void* data, std::size_t bytes, int root, bool on_device) override {
    check_device(on_device);
    if (bytes == 0) return;
    std::lock_guard lock(mutex_);
    order_after_compute();
    check(ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream_), "ncclBroadcast");
    finish("ncclBroadcast");
  }

  void do_barrier() override { all_gather_through_store(""); }

  std::vector<std::string> do_all_gather(const std::string& bytes) override {
    return all_gather_through_store(bytes);
  }

 private:
  static void check_device(bool on_device) {
    if (!on_device)
      throw InternalError("the NCCL process group reduces CUDA tensors; CPU tensors need Gloo");
  }

  // order_after_compute, finish, wait_comm and abort_locked run with mutex_ held
  // once the monitor runs: collectives come from the trainer's threads, and the
  // monitor may abort the communicator between two of them.

  // Also from the trainer's communication thread: the device is per thread.
  void order_after_compute() {
    if (!failure_.empty()) throw StageError(failure_);
    cuda::check(cudaSetDevice(device_.index), "cudaSetDevice");
    cuda::check(cudaEventRecord(ready_, compute_), "cudaEventRecord");
    cuda::check(cudaStreamWaitEvent(stream_, ready_, 0), "cudaStreamWaitEvent");
  }

  // Orders the compute stream after the collective just enqueued on stream_ and
  // hands it to the monitor. The host does not wait: for a gradient bucket that
  // would stall the step loop until the GPU had finished backward and the
  // reduction (the step loop never waits for the device). Everything that uses
  // the result runs on the compute stream behind the wait, a freed buffer is reused
  // only there, and a host read is a device-to-host copy on it, which waits.
  void finish(const char* what) {
    wait_comm(what);  // the enqueue itself, on a non-blocking communicator
    cudaEvent_t done = nullptr;
    if (spare_events_.empty()) {
      cuda::check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate");
    } else {
      done = spare_events_.back();
      spare_events_.pop_back();
    }
    const cudaError_t recorded = cudaEventRecord(done, stream_);
    if (recorded != cudaSuccess) spare_events_.push_back(done);
    cuda::check(recorded, "cudaEventRecord");
    in_flight_.push_back(
        {done, std::chrono::steady_clock::now() + timeout(), timeout(), what, sequence()});
    changed_.notify_all();
    cuda::check(cudaStreamWaitEvent(compute_, done, 0), "cudaStreamWaitEvent");
  }

  // The monitor thread: retires finished collectives (oldest first: stream_ runs
  // them in order) and aborts the communicator when one fails or outlives the
  // timeout. Polls every millisecond while any is in flight, sleeps otherwise.
  void monitor() {
    cudaSetDevice(device_.index);  // the events' device, for the runtime's bookkeeping
    std::unique_lock lock(mutex_);
    while (true) {
      changed_.wait(lock, [this] { return stop_ || (!in_flight_.empty() && failure_.empty()); });
      if (stop_) return;
      const InFlight& oldest = in_flight_.front();
      const cudaError_t status = cudaEventQuery(oldest.done);
      if (status == cudaSuccess) {
        spare_events_.push_back(oldest.done);
        in_flight_.pop_front();
        continue;
      }
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      const auto name = [&] {
        return fmt::format("{} (collective #{})", oldest.what, oldest.sequence);
      };
      if (status != cudaErrorNotReady) {
        cudaGetLastError();
        abort_locked(fmt::format("{} failed: {}", name(), cudaGetErrorString(status)));
      } else if (async != ncclSuccess && async != ncclInProgress) {
        abort_locked(fmt::format("{} failed: {}", name(), ncclGetErrorString(async)));
      } else if (std::chrono::steady_clock::now() >= oldest.deadline) {
        abort_locked(fmt::format("{} timed out after {} s; the communicator was aborted", name(),
                                 oldest.timeout.count() / 1000));
      } else {
        changed_.wait_for(lock, std::chrono::milliseconds(1), [this] { return stop_; });
      }
    }
  }

  // Makes every later collective on this rank fail with `why`. Aborting makes the
  // communicator's kernels return, so the streams waiting for them drain.
  void abort_locked(std::string why) {
    failure_ = std::move(why);
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
  }

  // A non-blocking communicator's call is done when its async state leaves
  // ncclInProgress.
  void wait_comm(const char* what) {
    const auto deadline = std::chrono::steady_clock::now() + timeout();
    ncclResult_t state = ncclInProgress;
    while (true) {
      check(ncclCommGetAsyncError(comm_, &state), what);
      if (state != ncclInProgress) break;
      if (std::chrono::steady_clock::now() >= deadline) abort_comm(what);
      std::this_thread::yield();
    }
    check(state, what);
  }

  [[noreturn]] void abort_comm(const char* what) {
    abort_locked(std::string(what) + " timed out after " +
                 std::to_string(timeout().count() / 1000) + " s; the communicator was aborted");
    throw StageError(failure_);
  }

  std::vector<std::string> all_gather_through_store(const std::string& bytes) {
    const std::string key = "nccl.gather." + std::to_string(sequence()) + ".";
    store_->set(key + std::to_string(rank()), bytes);
    std::vector<std::string> out;
    for (int r = 0; r < size(); ++r) out.push_back(store_->get(key + std::to_string(r), timeout()));
    return out;
  }

  struct InFlight {
    cudaEvent_t done;  // recorded after the collective on stream_
    std::chrono::steady_clock::time_point deadline;
    std::chrono::milliseconds timeout;  // the one in force when it was enqueued
    const char* what;
    std::uint64_t sequence;
  };

  std::shared_ptr<Store> store_;
  Device device_;
  cudaStream_t compute_ = nullptr, stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;
  ncclComm_t comm_ = nullptr;
  std::mutex mutex_;  // everything below, and comm_ once the monitor runs
  std::condition_variable changed_;
  std::deque<InFlight> in_flight_;
  std::vector<cudaEvent_t> spare_events_;  // finished collectives' events, for reuse
  std::string failure_;                    // set once the communicator is aborted
  bool stop_ = false;
  std::thread monitor_;
};

}  // namespace

std::unique_ptr<ProcessGroup> make_nccl_group(int rank, int size, Device device,
                                              std::shared_ptr<GroupState> state,
                                              const std::string& id_key) {
  return std::make_unique<NcclProcessGroup>(rank, size, device, std::move(state), id_key);
}

}  // namespace kiln::dist
#endif
