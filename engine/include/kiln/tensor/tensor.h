// An n-dimensional array: shape, dtype, device, and a reference-counted block of
// memory from the device's caching allocator. Tensors are contiguous (C order);
// views share memory and cover a reshape or a range of the leading dimension,
// which is all the training path needs (strided views only where needed).
#pragma once

#include <kiln/dtype.h>
#include <kiln/tensor/device.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace kiln {

using Shape = std::vector<std::int64_t>;

std::int64_t shape_elements(const Shape& shape);
std::string shape_string(const Shape& shape);  // "[128, 1, 28, 28]"

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::F32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::F64;
}
template <>
constexpr DType dtype_of<std::int32_t>() {
  return DType::I32;
}
template <>
constexpr DType dtype_of<std::int64_t>() {
  return DType::I64;
}
template <>
constexpr DType dtype_of<std::uint8_t>() {
  return DType::U8;
}

class Tensor {
 public:
  Tensor() = default;

  // Uninitialised memory (poisoned with NaN in debug builds would be nice; the
  // tests poison outputs themselves).
  static Tensor empty(Shape shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor zeros(Shape shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor full(Shape shape, float value, Device device = Device::cpu());
  // A CPU float32 tensor holding `values` (size must match the shape).
  static Tensor from(std::vector<float> values, Shape shape);

  bool defined() const noexcept { return storage_ != nullptr; }
  const Shape& shape() const noexcept { return shape_; }
  std::int64_t dim(int axis) const;  // negative counts from the end
  int rank() const noexcept { return static_cast<int>(shape_.size()); }
  std::int64_t numel() const noexcept { return numel_; }
  DType dtype() const noexcept { return dtype_; }
  Device device() const noexcept { return device_; }
  std::size_t nbytes() const noexcept { return static_cast<std::size_t>(numel_) * size_of(dtype_); }

  void* raw() noexcept;
  const void* raw() const noexcept;
  // Typed pointer; InternalError if T is not the tensor's dtype.
  template <class T>
  T* data() {
    check_type(dtype_of<T>());
    return static_cast<T*>(raw());
  }
  template <class T>
  const T* data() const {
    check_type(dtype_of<T>());
    return static_cast<const T*>(raw());
  }

  // Same memory, another shape with the same number of elements (-1 infers one).
  Tensor reshape(Shape shape) const;
  // Same memory, rows [begin, end) of the leading dimension.
  Tensor rows(std::int64_t begin, std::int64_t end) const;

  // A new tensor with the same contents (on `device`, default: the same).
  Tensor clone() const;
  Tensor to(Device device) const;
  // Copies `source` (same shape and dtype) into this tensor's memory.
  void copy_from(const Tensor& source);
  void fill(float value);  // float32 tensors
  void zero();

  // CPU float32 contents as a vector (tests, checkpoints, small reads).
  std::vector<float> to_vector() const;

 private:
  struct Storage;
  void check_type(DType expected) const;

  std::shared_ptr<Storage> storage_;
  std::size_t offset_ = 0;  // bytes from the start of the storage
  Shape shape_;
  std::int64_t numel_ = 0;
  DType dtype_ = DType::F32;
  Device device_;
};

}  // namespace kiln
