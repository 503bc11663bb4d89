// How an op reaches its device implementation. Each op is a class template over
// the device type, declared once in the op's header (ops/pool.h):
//
//   template <DeviceType D> struct AvgPool2d {
//     static void forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y);
//   };
//
// pool.cpp defines AvgPool2d<DeviceType::CPU>; pool.cu (built only with CUDA)
// defines AvgPool2d<DeviceType::CUDA> and the header marks it with
// KILN_OP_HAS_CUDA(AvgPool2d). Callers go through
// dispatch<AvgPool2d>(device, "avg_pool2d", [&](auto op) { op.forward(g, x, y); }),
// so adding an op or its CUDA twin adds files and touches no central table.
// Elementwise ops are one such op over a functor (ops/elementwise.h).
#pragma once

#include <kiln/error.h>
#include <kiln/tensor/tensor.h>

#include <string>
#include <utility>

namespace kiln::ops {

// True for ops whose CUDA twin is built; set by KILN_OP_HAS_CUDA in the op's header.
template <template <DeviceType> class Op>
inline constexpr bool kHasCuda = false;

#ifdef KILN_HAVE_CUDA
#define KILN_OP_HAS_CUDA(Op) \
  template <>                \
  inline constexpr bool kHasCuda<Op> = true;
inline constexpr bool kCudaBuilt = true;
#else
#define KILN_OP_HAS_CUDA(Op)
inline constexpr bool kCudaBuilt = false;
#endif

template <template <DeviceType> class Op, class Call>
decltype(auto) dispatch(Device device, const char* name, Call&& call) {
  if (device.is_cpu()) return std::forward<Call>(call)(Op<DeviceType::CPU>{});
  if constexpr (kCudaBuilt && kHasCuda<Op>) {
    return std::forward<Call>(call)(Op<DeviceType::CUDA>{});
  } else {
    throw ConfigError(std::string("op '") + name + "' has no CUDA implementation in this build (" +
                      device.str() + ")");
  }
}

// All tensors of one op call live on one device; InternalError otherwise.
void check_same_device(const char* op, std::initializer_list<const Tensor*> tensors);
// InternalError unless `tensor` has `shape` (op names the caller).
void check_shape(const char* op, const char* what, const Tensor& tensor, const Shape& shape);

}  // namespace kiln::ops
