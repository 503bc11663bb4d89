#include <kiln/error.h>
#include <kiln/tensor/tensor.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "tensor/device_memory.h"

namespace kiln {

struct Tensor::Storage {
  void* data = nullptr;
  std::size_t bytes = 0;
  Allocator* allocator = nullptr;

  Storage(std::size_t size, Allocator& owner) : bytes(size), allocator(&owner) {
    data = allocator->allocate(std::max<std::size_t>(bytes, 1));
  }
  ~Storage() { allocator->deallocate(data, std::max<std::size_t>(bytes, 1)); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

Allocator& allocator_for(Device device) {
  return device.is_cpu() ? cpu_allocator() : cuda_allocator(device.index);
}

std::int64_t shape_elements(const Shape& shape) {
  std::int64_t elements = 1;
  for (const std::int64_t extent : shape) {
    if (extent < 0) throw InternalError("negative extent in shape " + shape_string(shape));
    elements *= extent;
  }
  return elements;
}

std::string shape_string(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

Tensor Tensor::empty(Shape shape, DType dtype, Device device) {
  Tensor tensor;
  tensor.numel_ = shape_elements(shape);
  tensor.shape_ = std::move(shape);
  tensor.dtype_ = dtype;
  tensor.device_ = device;
  try {
    tensor.storage_ = std::make_shared<Storage>(tensor.nbytes(), allocator_for(device));
  } catch (const StageError& error) {
    // Out of memory: say which tensor did not fit (the runner adds the stage).
    rethrow_with_context(error, fmt::format("tensor {} {} on {}: ", name_of(dtype),
                                            shape_string(tensor.shape_), device.str()));
  }
  return tensor;
}

Tensor Tensor::zeros(Shape shape, DType dtype, Device device) {
  Tensor tensor = empty(std::move(shape), dtype, device);
  tensor.zero();
  return tensor;
}

Tensor Tensor::full(Shape shape, float value, Device device) {
  Tensor host = empty(std::move(shape));
  host.fill(value);
  return host.to(device);
}

Tensor Tensor::from(std::vector<float> values, Shape shape) {
  Tensor tensor = empty(std::move(shape));
  if (static_cast<std::int64_t>(values.size()) != tensor.numel())
    throw InternalError(fmt::format("Tensor::from: {} values for shape {}", values.size(),
                                    shape_string(tensor.shape())));
  std::memcpy(tensor.raw(), values.data(), tensor.nbytes());
  return tensor;
}

std::int64_t Tensor::dim(int axis) const {
  const int index = axis < 0 ? rank() + axis : axis;
  if (index < 0 || index >= rank())
    throw InternalError(fmt::format("axis {} of a tensor of shape {}", axis, shape_string(shape_)));
  return shape_[static_cast<std::size_t>(index)];
}

void* Tensor::raw() noexcept {
  return storage_ ? static_cast<char*>(storage_->data) + offset_ : nullptr;
}
const void* Tensor::raw() const noexcept {
  return storage_ ? static_cast<const char*>(storage_->data) + offset_ : nullptr;
}

void Tensor::check_type(DType expected) const {
  if (dtype_ != expected)
    throw InternalError(
        fmt::format("tensor of dtype {} read as {}", name_of(dtype_), name_of(expected)));
}

Tensor Tensor::reshape(Shape shape) const {
  std::int64_t known = 1;
  int inferred = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (inferred >= 0) throw InternalError("reshape: more than one -1");
      inferred = static_cast<int>(i);
    } else {
      known *= shape[i];
    }
  }
  if (inferred >= 0 && known > 0) shape[static_cast<std::size_t>(inferred)] = numel_ / known;
  if (shape_elements(shape) != numel_)
    throw InternalError(fmt::format("reshape {} -> {}: element counts differ", shape_string(shape_),
                                    shape_string(shape)));
  Tensor view = *this;
  view.shape_ = std::move(shape);
  return view;
}

Tensor Tensor::rows(std::int64_t begin, std::int64_t end) const {
  if (rank() == 0 || begin < 0 || end < begin || end > shape_[0])
    throw InternalError(
        fmt::format("rows [{}, {}) of a tensor of shape {}", begin, end, shape_string(shape_)));
  Tensor view = *this;
  const std::int64_t row_elements = shape_[0] == 0 ? 0 : numel_ / shape_[0];
  view.offset_ += static_cast<std::size_t>(begin * row_elements) * size_of(dtype_);
  view.shape_[0] = end - begin;
  view.numel_ = (end - begin) * row_elements;
  return view;
}

Tensor Tensor::clone() const { return to(device_); }

Tensor Tensor::to(Device device) const {
  Tensor copy = empty(shape_, dtype_, device);
  copy_bytes(copy.raw(), device, raw(), device_, nbytes());
  return copy;
}

void Tensor::copy_from(const Tensor& source) {
  if (source.shape_ != shape_ || source.dtype_ != dtype_)
    throw InternalError(fmt::format("copy_from: {} {} into {} {}", name_of(source.dtype_),
                                    shape_string(source.shape_), name_of(dtype_),
                                    shape_string(shape_)));
  copy_bytes(raw(), device_, source.raw(), source.device_, nbytes());
}

void Tensor::fill(float value) {
  if (!device_.is_cpu()) {
    copy_from(full(shape_, value, Device::cpu()));
    return;
  }
  float* values = data<float>();
  std::fill(values, values + numel_, value);
}

void Tensor::zero() { zero_bytes(raw(), device_, nbytes()); }

std::vector<float> Tensor::to_vector() const {
  const Tensor host = device_.is_cpu() ? *this : to(Device::cpu());
  const float* values = host.data<float>();
  return std::vector<float>(values, values + numel_);
}

}  // namespace kiln
