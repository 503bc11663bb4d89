// The NCCL backend (CUDA builds): one communicator per process on the GPU the
// trainer uses (ProcessGroup::device_group), created from a unique id that rank 0
// draws and hands over through the rendezvous store. Collectives run on the
// group's own stream, which waits for the device's compute stream through an
// event (SPEC 8), and are waited for by polling, so that the watchdog's timeout can abort the
// communicator (NCCL itself would wait forever for a rank that never comes). Barrier and all-gather
// of metadata go through the store, not the GPU. Host code only (no kernels), so a
// plain C++ file, compiled in CUDA builds.
#ifdef KILN_HAVE_CUDA
#include <kiln/error.h>

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstring>
#include <thread>

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
    cuda::check(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), "cudaEventCreate");
  }

  ~NcclProcessGroup() override {
    if (comm_ != nullptr) ncclCommAbort(comm_);  // finalize could wait on dead peers
    if (done_ != nullptr) cudaEventDestroy(done_);
    if (ready_ != nullptr) cudaEventDestroy(ready_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  const char* backend() const noexcept override { return "nccl"; }

 protected:
  void do_all_reduce(float* data, std::size_t count, ReduceOp op, bool on_device) override {
    check_device(on_device);
    if (count == 0) return;
    order_after_compute();
    check(ncclAllReduce(data, data, count, ncclFloat32, op == ReduceOp::Avg ? ncclAvg : ncclSum,
                        comm_, stream_),
          "ncclAllReduce");
    finish("ncclAllReduce");
  }

  void do_broadcast(void* data, std::size_t bytes, int root, bool on_device) override {
    check_device(on_device);
    if (bytes == 0) return;
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

  // Also from the trainer's communication thread: the device is per thread.
  void order_after_compute() {
    cuda::check(cudaSetDevice(device_.index), "cudaSetDevice");
    cuda::check(cudaEventRecord(ready_, compute_), "cudaEventRecord");
    cuda::check(cudaStreamWaitEvent(stream_, ready_, 0), "cudaStreamWaitEvent");
  }

  // Waits for the collective on stream_, then orders the compute stream after it.
  void finish(const char* what) {
    wait_comm(what);
    const auto deadline = std::chrono::steady_clock::now() + timeout();
    while (true) {
      const cudaError_t status = cudaStreamQuery(stream_);
      if (status == cudaSuccess) break;
      if (status != cudaErrorNotReady) cuda::check(status, what);
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      check(async, what);
      if (std::chrono::steady_clock::now() >= deadline) abort_comm(what);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    cuda::check(cudaEventRecord(done_, stream_), "cudaEventRecord");
    cuda::check(cudaStreamWaitEvent(compute_, done_, 0), "cudaStreamWaitEvent");
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
    ncclCommAbort(comm_);
    comm_ = nullptr;
    throw StageError(std::string(what) + " timed out after " +
                     std::to_string(timeout().count() / 1000) + " s; the communicator was aborted");
  }

  std::vector<std::string> all_gather_through_store(const std::string& bytes) {
    const std::string key = "nccl.gather." + std::to_string(sequence()) + ".";
    store_->set(key + std::to_string(rank()), bytes);
    std::vector<std::string> out;
    for (int r = 0; r < size(); ++r) out.push_back(store_->get(key + std::to_string(r), timeout()));
    return out;
  }

  std::shared_ptr<Store> store_;
  Device device_;
  cudaStream_t compute_ = nullptr, stream_ = nullptr;
  cudaEvent_t ready_ = nullptr, done_ = nullptr;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

std::unique_ptr<ProcessGroup> make_nccl_group(int rank, int size, Device device,
                                              std::shared_ptr<GroupState> state,
                                              const std::string& id_key) {
  return std::make_unique<NcclProcessGroup>(rank, size, device, std::move(state), id_key);
}

}  // namespace kiln::dist
#endif
