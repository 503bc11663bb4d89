#include "ops/activation.h"

namespace kiln::ops {
namespace {

void check_same(const char* op, const Tensor& a, const Tensor& b) {
  check_same_device(op, {&a, &b});
  check_shape(op, "output", b, a.shape());
}

}  // namespace

void check_elementwise(const char* op, const Tensor& x, const Tensor& y) { check_same(op, x, y); }

template <>
void Dropout<DeviceType::CPU>::forward(const Tensor& x, float p, const DropoutDraw& draw, Tensor& y,
                                       Tensor& mask) {
  const float scale = 1.0f / (1.0f - p);
  for (std::int64_t block = 0; block * 4 < x.numel(); ++block)
    dropout_block(block, x.numel(), x.data<float>(), p, scale, draw, y.data<float>(),
                  mask.data<std::uint8_t>());
}

template <>
void Dropout<DeviceType::CPU>::backward(const Tensor& dy, const Tensor& mask, float p, Tensor& dx) {
  const float* grad = dy.data<float>();
  const std::uint8_t* kept = mask.data<std::uint8_t>();
  float* result = dx.data<float>();
  const float scale = 1.0f / (1.0f - p);
  for (std::int64_t i = 0; i < dy.numel(); ++i) result[i] = kept[i] ? grad[i] * scale : 0.0f;
}

template <>
void Add<DeviceType::CPU>::run(const Tensor& a, const Tensor& b, Tensor& y) {
  const float* lhs = a.data<float>();
  const float* rhs = b.data<float>();
  float* out = y.data<float>();
  for (std::int64_t i = 0; i < a.numel(); ++i) out[i] = lhs[i] + rhs[i];
}

void dropout_forward(const Tensor& x, float p, const DropoutDraw& draw, Tensor& y, Tensor& mask) {
  check_same("dropout", x, y);
  dispatch<Dropout>(x.device(), "dropout", [&](auto op) { op.forward(x, p, draw, y, mask); });
}
void dropout_backward(const Tensor& dy, const Tensor& mask, float p, Tensor& dx) {
  check_same("dropout_backward", dy, dx);
  dispatch<Dropout>(dy.device(), "dropout", [&](auto op) { op.backward(dy, mask, p, dx); });
}
void add(const Tensor& a, const Tensor& b, Tensor& y) {
  check_same("add", a, b);
  check_same("add", a, y);
  dispatch<Add>(a.device(), "add", [&](auto op) { op.run(a, b, y); });
}

}  // namespace kiln::ops
