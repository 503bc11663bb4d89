// CPU convolution through oneDNN, the library PyTorch's CPU convolutions use too.
// Primitives are built once per geometry and kept; oneDNN chooses its own
// (blocked) layouts ("any") and kiln's NCHW tensors are reordered in and out, which
// measured faster than asking oneDNN to work on NCHW directly (benchmarks/RESULTS.md).
// In bf16 the input, weights and output gradient are rounded on that reorder; the
// outputs and gradients oneDNN writes stay float32.
#include "ops/conv.h"

#include <fmt/format.h>

#include <map>
#include <mutex>
#include <tuple>

#include "ops/onednn.h"

namespace kiln::ops {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;

memory::dims dims_of(const Shape& shape) { return memory::dims(shape.begin(), shape.end()); }

struct ConvPrimitives {
  dnnl::convolution_forward::primitive_desc forward_pd;
  dnnl::convolution_backward_data::primitive_desc backward_data_pd;
  dnnl::convolution_backward_weights::primitive_desc backward_weights_pd;
  dnnl::convolution_forward forward, forward_no_bias;
  dnnl::convolution_backward_data backward_data;
  dnnl::convolution_backward_weights backward_weights;
  dnnl::convolution_forward::primitive_desc forward_no_bias_pd;
  // Each argument staged in the primitive's layout (buffers and reorders kept).
  onednn::Staged src, weights, dst;                             // forward
  onednn::Staged diff_dst, bwd_weights, diff_src;               // backward data
  onednn::Staged bwd_src, bwd_diff_dst, diff_weights_to_plain;  // backward weights
  // The weight gradient in plain OIHW and the bias gradient, before they are added.
  memory diff_weights, diff_bias;
};

auto geometry_key(const Conv2dGeometry& g, MathPrecision precision) {
  return std::make_tuple(g.batch, g.in_channels, g.height, g.width, g.out_channels, g.kernel,
                         g.stride, g.padding, precision);
}

ConvPrimitives build(const Conv2dGeometry& g, MathPrecision precision) {
  const memory::dims stride{g.stride, g.stride}, padding{g.padding, g.padding};
  const auto f32 = memory::data_type::f32;
  const auto factors = precision == MathPrecision::BF16 ? memory::data_type::bf16 : f32;
  const memory::desc src(dims_of(g.input_shape()), factors, Tag::any);
  const memory::desc weights(dims_of(g.weight_shape()), factors, Tag::any);
  const memory::desc bias({g.out_channels}, f32, Tag::x);
  const memory::desc dst(dims_of(g.output_shape()), f32, Tag::any);
  const memory::desc diff_src(dims_of(g.input_shape()), f32, Tag::any);
  const memory::desc diff_weights(dims_of(g.weight_shape()), f32, Tag::any);
  const memory::desc diff_dst(dims_of(g.output_shape()), factors, Tag::any);
  const auto algorithm = dnnl::algorithm::convolution_direct;
  auto& engine = onednn::engine();
  ConvPrimitives p;
  p.forward_pd = {{dnnl::prop_kind::forward_training, algorithm, src, weights, bias, dst, stride,
                   padding, padding},
                  engine};
  p.forward_no_bias_pd = {
      {dnnl::prop_kind::forward_training, algorithm, src, weights, dst, stride, padding, padding},
      engine};
  p.backward_data_pd = {
      {algorithm, diff_src, weights, diff_dst, stride, padding, padding}, engine, p.forward_pd};
  p.backward_weights_pd = {{algorithm, src, diff_weights, bias, diff_dst, stride, padding, padding},
                           engine,
                           p.forward_pd};
  p.forward = dnnl::convolution_forward(p.forward_pd);
  p.forward_no_bias = dnnl::convolution_forward(p.forward_no_bias_pd);
  p.backward_data = dnnl::convolution_backward_data(p.backward_data_pd);
  p.backward_weights = dnnl::convolution_backward_weights(p.backward_weights_pd);
  return p;
}

// `requested` becomes what this CPU computes (cpu_math), so that float32 fallbacks
// share the float32 primitives.
ConvPrimitives& primitives(const Conv2dGeometry& g, MathPrecision requested) {
  const MathPrecision precision = cpu_math(requested);
  static std::mutex mutex;
  static std::map<decltype(geometry_key(g, precision)), ConvPrimitives> cache;
  std::lock_guard lock(mutex);
  const auto key = geometry_key(g, precision);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, build(g, precision)).first;
  return it->second;
}

void add_into(Tensor& target, const memory& source) {
  const auto* values = static_cast<const float*>(source.get_data_handle());
  float* out = target.data<float>();
  for (std::int64_t i = 0; i < target.numel(); ++i) out[i] += values[i];
}

}  // namespace

template <>
void Conv2d<DeviceType::CPU>::forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                                      const Tensor& bias, Tensor& y, MathPrecision precision) {
  ConvPrimitives& p = primitives(g, precision);
  auto& pd = bias.defined() ? p.forward_pd : p.forward_no_bias_pd;
  memory user_src = onednn::wrap(x, dims_of(g.input_shape()), Tag::nchw);
  memory user_weights = onednn::wrap(w, dims_of(g.weight_shape()), Tag::oihw);
  memory user_dst = onednn::wrap(y, dims_of(g.output_shape()), Tag::nchw);
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, p.src.input(user_src, pd.src_desc())},
      {DNNL_ARG_WEIGHTS, p.weights.input(user_weights, pd.weights_desc())},
      {DNNL_ARG_DST, p.dst.output(user_dst, pd.dst_desc())}};
  if (bias.defined()) args[DNNL_ARG_BIAS] = onednn::wrap(bias, {g.out_channels}, Tag::x);
  (bias.defined() ? p.forward : p.forward_no_bias).execute(onednn::stream(), args);
  p.dst.finish(user_dst);
  onednn::stream().wait();
}

template <>
void Conv2d<DeviceType::CPU>::backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                                       const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& db,
                                       MathPrecision precision) {
  ConvPrimitives& p = primitives(g, precision);
  memory user_dy = onednn::wrap(dy, dims_of(g.output_shape()), Tag::nchw);
  if (dx.defined()) {
    memory user_weights = onednn::wrap(w, dims_of(g.weight_shape()), Tag::oihw);
    memory user_dx = onednn::wrap(dx, dims_of(g.input_shape()), Tag::nchw);
    const auto& pd = p.backward_data_pd;
    p.backward_data.execute(
        onednn::stream(), {{DNNL_ARG_DIFF_DST, p.diff_dst.input(user_dy, pd.diff_dst_desc())},
                           {DNNL_ARG_WEIGHTS, p.bwd_weights.input(user_weights, pd.weights_desc())},
                           {DNNL_ARG_DIFF_SRC, p.diff_src.output(user_dx, pd.diff_src_desc())}});
    p.diff_src.finish(user_dx);
  }
  const auto& pd = p.backward_weights_pd;
  memory user_src = onednn::wrap(x, dims_of(g.input_shape()), Tag::nchw);
  // Written to buffers and added, so gradients accumulate over micro-batches.
  if (!p.diff_weights) {
    p.diff_weights =
        memory({dims_of(g.weight_shape()), memory::data_type::f32, Tag::oihw}, onednn::engine());
    p.diff_bias = memory(pd.diff_bias_desc(), onednn::engine());
  }
  p.backward_weights.execute(
      onednn::stream(), {{DNNL_ARG_SRC, p.bwd_src.input(user_src, pd.src_desc())},
                         {DNNL_ARG_DIFF_DST, p.bwd_diff_dst.input(user_dy, pd.diff_dst_desc())},
                         {DNNL_ARG_DIFF_WEIGHTS,
                          p.diff_weights_to_plain.output(p.diff_weights, pd.diff_weights_desc())},
                         {DNNL_ARG_DIFF_BIAS, p.diff_bias}});
  p.diff_weights_to_plain.finish(p.diff_weights);
  onednn::stream().wait();
  add_into(dw, p.diff_weights);
  if (db.defined()) add_into(db, p.diff_bias);
}

namespace {
void check(const Conv2dGeometry& g, const Tensor& x, const Tensor& w) {
  check_shape("conv2d", "input", x, g.input_shape());
  check_shape("conv2d", "weight", w, g.weight_shape());
}
}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                    Tensor& y, MathPrecision precision) {
  check(g, x, w);
  check_shape("conv2d", "output", y, g.output_shape());
  check_same_device("conv2d", {&x, &w, &y});
  dispatch<Conv2d>(x.device(), "conv2d", [&](auto op) { op.forward(g, x, w, bias, y, precision); });
}

void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& dy,
                     Tensor& dx, Tensor& dw, Tensor& db, MathPrecision precision) {
  check(g, x, w);
  check_shape("conv2d_backward", "output gradient", dy, g.output_shape());
  check_same_device("conv2d_backward", {&x, &w, &dy, &dw});
  dispatch<Conv2d>(x.device(), "conv2d",
                   [&](auto op) { op.backward(g, x, w, dy, dx, dw, db, precision); });
}

}  // namespace kiln::ops
