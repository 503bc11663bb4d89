// Private to train: data-parallel gradient averaging overlapped with backward
// (docs/distributed.md). The model reports each bucket of parameters whose gradients are final
// (last layer first); the bucket goes to a communication thread, which packs the
// gradients into one flat buffer, all-reduces it (sum: each rank's loss is already
// weighted by 1/global_rows, so the sum is the one-rank gradient) and unpacks it,
// while the main thread goes on with the earlier layers. wait() returns when every
// bucket of the step is reduced, before the optimizer step.
//
// The buffer lives where the group reduces: in host memory for Gloo, on the GPU
// for NCCL (the packing copies are ordered on the device's stream after the
// gradients' kernels; the NCCL group orders its own stream after them by an event).
#pragma once

#include <kiln/dist/process_group.h>
#include <kiln/nn/model.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln::train {

class GradientReducer {
 public:
  GradientReducer(nn::Model& model, dist::ProcessGroup& group, std::size_t bucket_bytes);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Buckets are reduced only while armed: on the last micro-batch of a step
  // (earlier ones only accumulate).
  void arm() { armed_ = true; }
  // This rank has no rows in the step (a short last batch split over more ranks
  // than rows): its gradients are zero and every bucket is reduced as it is.
  void reduce_without_backward();
  // Waits for every bucket of this step; rethrows the communication's error.
  void wait();

 private:
  void enqueue(const nn::GradientBucket& bucket);
  void communicate();
  void reduce(const std::vector<nn::Parameter*>& parameters);
  void reduce_on_device(const std::vector<nn::Parameter*>& parameters, std::int64_t count);
  void reduce_on_host(const std::vector<nn::Parameter*>& parameters, std::int64_t count);

  nn::Model& model_;
  dist::ProcessGroup& group_;
  bool armed_ = false;
  std::vector<float> buffer_;  // Gloo: host staging (communication thread only)
  Tensor device_buffer_;       // NCCL: the flat bucket on the GPU (ditto)
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::vector<nn::Parameter*>> queue_;
  std::size_t pending_ = 0;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kiln::train
