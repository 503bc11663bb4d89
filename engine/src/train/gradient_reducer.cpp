#include "train/gradient_reducer.h"

#include <cstring>

namespace kiln::train {

GradientReducer::GradientReducer(nn::Model& model, dist::ProcessGroup& group,
                                 std::size_t bucket_bytes)
    : model_(model), group_(group) {
  model_.set_gradient_hook([this](const nn::GradientBucket& bucket) { enqueue(bucket); },
                           bucket_bytes);
  thread_ = std::thread([this] { communicate(); });
}

GradientReducer::~GradientReducer() {
  model_.set_gradient_hook(nullptr);
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void GradientReducer::enqueue(const nn::GradientBucket& bucket) {
  if (!armed_) return;
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(bucket.parameters);
    ++pending_;
  }
  changed_.notify_all();
}

void GradientReducer::reduce_without_backward() {
  armed_ = true;
  for (const nn::GradientBucket& bucket : model_.gradient_buckets()) enqueue(bucket);
}

void GradientReducer::wait() {
  armed_ = false;
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return pending_ == 0; });
  if (error_) {
    // The group is unusable after a failed collective: every later step fails too.
    std::rethrow_exception(error_);
  }
}

void GradientReducer::communicate() {
  std::unique_lock lock(mutex_);
  while (true) {
    changed_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;
    std::vector<nn::Parameter*> parameters = std::move(queue_.front());
    queue_.pop_front();
    const bool failed = error_ != nullptr;
    lock.unlock();
    std::exception_ptr error;
    if (!failed) {
      try {
        reduce(parameters);
      } catch (...) {
        error = std::current_exception();
      }
    }
    lock.lock();
    if (error && !error_) error_ = error;
    --pending_;
    changed_.notify_all();
  }
}

void GradientReducer::reduce(const std::vector<nn::Parameter*>& parameters) {
  std::int64_t count = 0;
  for (const nn::Parameter* p : parameters) count += p->grad.numel();
  if (parameters.front()->grad.device().is_cuda())
    reduce_on_device(parameters, count);
  else
    reduce_on_host(parameters, count);
}

void GradientReducer::reduce_on_device(const std::vector<nn::Parameter*>& parameters,
                                       std::int64_t count) {
  const Device device = parameters.front()->grad.device();
  if (!device_buffer_.defined() || device_buffer_.numel() < count)
    device_buffer_ = Tensor::empty({count}, DType::F32, device);
  Tensor flat = device_buffer_.rows(0, count);
  std::int64_t offset = 0;
  for (const nn::Parameter* p : parameters) {
    const std::int64_t n = p->grad.numel();
    flat.rows(offset, offset + n).copy_from(p->grad.reshape({n}));
    offset += n;
  }
  group_.all_reduce(flat, dist::ReduceOp::Sum);  // NCCL: CUDA tensors in place
  offset = 0;
  for (nn::Parameter* p : parameters) {
    const std::int64_t n = p->grad.numel();
    Tensor grad = p->grad.reshape({n});
    grad.copy_from(flat.rows(offset, offset + n));
    offset += n;
  }
}

void GradientReducer::reduce_on_host(const std::vector<nn::Parameter*>& parameters,
                                     std::int64_t count) {
  buffer_.resize(static_cast<std::size_t>(count));
  std::size_t offset = 0;
  for (const nn::Parameter* p : parameters) {
    std::memcpy(buffer_.data() + offset, p->grad.data<float>(), p->grad.nbytes());
    offset += static_cast<std::size_t>(p->grad.numel());
  }
  group_.all_reduce(std::span<float>(buffer_), dist::ReduceOp::Sum);
  offset = 0;
  for (nn::Parameter* p : parameters) {
    std::memcpy(p->grad.data<float>(), buffer_.data() + offset, p->grad.nbytes());
    offset += static_cast<std::size_t>(p->grad.numel());
  }
}

}  // namespace kiln::train
