// Elementwise ops over a functor of host+device arithmetic (ops/activation_math.h):
// one CPU loop template here, one kernel template in activation.cu, and the functor
// between them is the only place the formula is written.
//
//   ops::elementwise_forward(ops::Gelu{}, x, y);           // y[i] = f.forward(x[i])
//   ops::elementwise_backward(ops::Gelu{}, x, dy, dx);     // dx[i] = f.backward(x[i], dy[i])
#pragma once

#include "ops/activation_math.h"
#include "ops/dispatch.h"
#include "ops/parallel.h"

namespace kiln::ops {

template <DeviceType D>
struct Elementwise;

// Elements are independent, so tensors of at least kParallelElements (parallel.h)
// split over the CPU threads without changing a bit.
template <>
struct Elementwise<DeviceType::CPU> {
  template <class F>
  static void forward(const F& f, const Tensor& x, Tensor& y) {
    const float* in = x.data<float>();
    float* out = y.data<float>();
    parallel_chunks(x.numel(), kParallelElements, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) out[i] = f.forward(in[i]);
    });
  }
  template <class F>
  static void backward(const F& f, const Tensor& saved, const Tensor& dy, Tensor& dx) {
    const float* kept = saved.data<float>();
    const float* grad = dy.data<float>();
    float* result = dx.data<float>();
    parallel_chunks(saved.numel(), kParallelElements, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) result[i] = f.backward(kept[i], grad[i]);
    });
  }
};

// Defined in activation.cu for every functor of KILN_ACTIVATIONS.
template <>
struct Elementwise<DeviceType::CUDA> {
  template <class F>
  static void forward(const F& f, const Tensor& x, Tensor& y);
  template <class F>
  static void backward(const F& f, const Tensor& saved, const Tensor& dy, Tensor& dx);
};

KILN_OP_HAS_CUDA(Elementwise)

// InternalError unless the tensors share device and shape.
void check_elementwise(const char* op, const Tensor& x, const Tensor& y);

template <class F>
void elementwise_forward(const F& f, const Tensor& x, Tensor& y) {
  check_elementwise("elementwise", x, y);
  dispatch<Elementwise>(x.device(), "elementwise", [&](auto op) { op.forward(f, x, y); });
}

// `saved` is the forward's output where F::kSavesOutput, else its input.
template <class F>
void elementwise_backward(const F& f, const Tensor& saved, const Tensor& dy, Tensor& dx) {
  check_elementwise("elementwise_backward", saved, dy);
  check_elementwise("elementwise_backward", saved, dx);
  dispatch<Elementwise>(saved.device(), "elementwise",
                        [&](auto op) { op.backward(f, saved, dy, dx); });
}

}  // namespace kiln::ops
