#include "ops/activation.h"

#include <kiln/nn/rng.h>

#include <cmath>

namespace kiln::ops {
namespace {

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

void check_same(const char* op, const Tensor& a, const Tensor& b) {
  check_same_device(op, {&a, &b});
  check_shape(op, "output", b, a.shape());
}

}  // namespace

template <>
void Relu<DeviceType::CPU>::forward(const Tensor& x, Tensor& y) {
  const float* in = x.data<float>();
  float* out = y.data<float>();
  // Written so that NaN passes through (NaN < 0 is false), as torch.relu does: a
  // NaN must reach the loss for the trainer's guard to see it.
  for (std::int64_t i = 0; i < x.numel(); ++i) out[i] = in[i] < 0.0f ? 0.0f : in[i];
}

template <>
void Relu<DeviceType::CPU>::backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  const float* out = y.data<float>();
  const float* grad = dy.data<float>();
  float* result = dx.data<float>();
  for (std::int64_t i = 0; i < y.numel(); ++i) result[i] = out[i] > 0.0f ? grad[i] : 0.0f;
}

template <>
void Gelu<DeviceType::CPU>::forward(const Tensor& x, Tensor& y) {
  const float* in = x.data<float>();
  float* out = y.data<float>();
  for (std::int64_t i = 0; i < x.numel(); ++i)
    out[i] = 0.5f * in[i] * (1.0f + std::erf(in[i] * kInvSqrt2));
}

template <>
void Gelu<DeviceType::CPU>::backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  const float* in = x.data<float>();
  const float* grad = dy.data<float>();
  float* result = dx.data<float>();
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const float v = in[i];
    // d/dx x Phi(x) = Phi(x) + x phi(x).
    const float cdf = 0.5f * (1.0f + std::erf(v * kInvSqrt2));
    const float pdf = kInvSqrt2Pi * std::exp(-0.5f * v * v);
    result[i] = grad[i] * (cdf + v * pdf);
  }
}

template <>
void Dropout<DeviceType::CPU>::forward(const Tensor& x, float p, const DropoutDraw& draw,
                                       Tensor& y, Tensor& mask) {
  const float* in = x.data<float>();
  float* out = y.data<float>();
  std::uint8_t* kept = mask.data<std::uint8_t>();
  const float scale = 1.0f / (1.0f - p);
  const std::array<std::uint32_t, 2> key{static_cast<std::uint32_t>(draw.seed),
                                         static_cast<std::uint32_t>(draw.seed >> 32)};
  const auto stream = static_cast<std::uint32_t>(nn::RngStream::Dropout);
  for (std::int64_t block = 0; block * 4 < x.numel(); ++block) {
    const auto words =
        nn::philox4x32_raw({static_cast<std::uint32_t>(block), draw.layer, stream, draw.step}, key);
    for (std::int64_t lane = 0; lane < 4 && block * 4 + lane < x.numel(); ++lane) {
      const std::int64_t i = block * 4 + lane;
      const float u = static_cast<float>(words[static_cast<std::size_t>(lane)] >> 8) * 0x1.0p-24f;
      kept[i] = u >= p;
      out[i] = kept[i] ? in[i] * scale : 0.0f;
    }
  }
}

template <>
void Dropout<DeviceType::CPU>::backward(const Tensor& dy, const Tensor& mask, float p,
                                        Tensor& dx) {
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

void relu_forward(const Tensor& x, Tensor& y) {
  check_same("relu", x, y);
  dispatch<Relu>(x.device(), "relu", [&](auto op) { op.forward(x, y); });
}
void relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  check_same("relu_backward", y, dy);
  check_same("relu_backward", y, dx);
  dispatch<Relu>(y.device(), "relu", [&](auto op) { op.backward(y, dy, dx); });
}
void gelu_forward(const Tensor& x, Tensor& y) {
  check_same("gelu", x, y);
  dispatch<Gelu>(x.device(), "gelu", [&](auto op) { op.forward(x, y); });
}
void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  check_same("gelu_backward", x, dy);
  check_same("gelu_backward", x, dx);
  dispatch<Gelu>(x.device(), "gelu", [&](auto op) { op.backward(x, dy, dx); });
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
