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
  std::size_t count = 0;
  for (const nn::Parameter* p : parameters) count += static_cast<std::size_t>(p->grad.numel());
  buffer_.resize(count);
  // Host buffers: Gloo reduces CPU memory; CUDA gradients are staged through it.
  std::size_t offset = 0;
  for (const nn::Parameter* p : parameters) {
    const Tensor host = p->grad.device().is_cpu() ? p->grad : p->grad.to(Device::cpu());
    std::memcpy(buffer_.data() + offset, host.data<float>(), host.nbytes());
    offset += static_cast<std::size_t>(host.numel());
  }
  group_.all_reduce(std::span<float>(buffer_), dist::ReduceOp::Sum);
  offset = 0;
  for (nn::Parameter* p : parameters) {
    const auto n = static_cast<std::size_t>(p->grad.numel());
    if (p->grad.device().is_cpu()) {
      std::memcpy(p->grad.data<float>(), buffer_.data() + offset, n * sizeof(float));
    } else {
      p->grad.copy_from(Tensor::from({buffer_.begin() + static_cast<std::ptrdiff_t>(offset),
                                      buffer_.begin() + static_cast<std::ptrdiff_t>(offset + n)},
                                     p->grad.shape()));
    }
    offset += n;
  }
}

}  // namespace kiln::train
