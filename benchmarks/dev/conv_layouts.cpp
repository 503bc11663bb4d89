// Experiment behind ops/conv.cpp's choice (llm.c's dev/ habit: experiments stay,
// only the winner moves into the engine). One training step of the two
// convolutions of the Fashion-MNIST CNN (batch 128, 3x3, padding 1): forward,
// backward-data (not for the 1-channel input) and backward-weights, by
//   onednn-nchw  oneDNN on plain NCHW/OIHW memory
//   onednn-any   oneDNN in the layouts it picks, reordering NCHW in and out
//   im2col       im2col / col2im per image + OpenBLAS GEMM
// Prints milliseconds per step for each. Results: benchmarks/RESULTS.md.
#include <cblas.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

namespace {

using dnnl::memory;
using Clock = std::chrono::steady_clock;

struct Geometry {
  int n, c, h, w, o, k, p;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void fill(memory& m) {
  auto* values = static_cast<float*>(m.get_data_handle());
  const std::size_t count = m.get_desc().get_size() / sizeof(float);
  for (std::size_t i = 0; i < count; ++i) values[i] = static_cast<float>(i % 7) * 0.1f;
}

// `user` if `wanted` is its layout, else `internal` after a reorder from `user`.
memory& in_layout(memory& user, memory& internal, dnnl::stream& s) {
  if (internal.get_desc() == user.get_desc()) return user;
  dnnl::reorder(user, internal).execute(s, user, internal);
  return internal;
}

double onednn_step_ms(const Geometry& g, bool any, int iterations) {
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream s(engine);
  const memory::dims src{g.n, g.c, g.h, g.w}, weights{g.o, g.c, g.k, g.k}, bias{g.o},
      dst{g.n, g.o, g.h, g.w}, stride{1, 1}, pad{g.p, g.p};
  const auto f32 = memory::data_type::f32;
  const auto act = any ? memory::format_tag::any : memory::format_tag::nchw;
  const auto wts = any ? memory::format_tag::any : memory::format_tag::oihw;
  const memory::desc src_md(src, f32, act), w_md(weights, f32, wts),
      b_md(bias, f32, memory::format_tag::x), dst_md(dst, f32, act);
  const auto algorithm = dnnl::algorithm::convolution_direct;
  const dnnl::convolution_forward::primitive_desc fwd(
      {dnnl::prop_kind::forward_training, algorithm, src_md, w_md, b_md, dst_md, stride, pad, pad},
      engine);
  const dnnl::convolution_backward_data::primitive_desc bwd_data(
      {algorithm, src_md, w_md, dst_md, stride, pad, pad}, engine, fwd);
  const dnnl::convolution_backward_weights::primitive_desc bwd_weights(
      {algorithm, src_md, w_md, b_md, dst_md, stride, pad, pad}, engine, fwd);
  memory x({src, f32, memory::format_tag::nchw}, engine),
      w({weights, f32, memory::format_tag::oihw}, engine),
      b({bias, f32, memory::format_tag::x}, engine),
      y({dst, f32, memory::format_tag::nchw}, engine),
      dy({dst, f32, memory::format_tag::nchw}, engine),
      dx({src, f32, memory::format_tag::nchw}, engine),
      dw({weights, f32, memory::format_tag::oihw}, engine),
      db({bias, f32, memory::format_tag::x}, engine);
  for (memory* m : {&x, &w, &b, &dy}) fill(*m);
  memory x_in(fwd.src_desc(), engine), w_in(fwd.weights_desc(), engine),
      y_in(fwd.dst_desc(), engine), dy_in(bwd_data.diff_dst_desc(), engine),
      w_in2(bwd_data.weights_desc(), engine), dx_in(bwd_data.diff_src_desc(), engine),
      x_in2(bwd_weights.src_desc(), engine), dy_in2(bwd_weights.diff_dst_desc(), engine),
      dw_in(bwd_weights.diff_weights_desc(), engine);
  const dnnl::convolution_forward forward(fwd);
  const dnnl::convolution_backward_data backward_data(bwd_data);
  const dnnl::convolution_backward_weights backward_weights(bwd_weights);
  auto step = [&] {
    memory& yy = y_in.get_desc() == y.get_desc() ? y : y_in;
    forward.execute(s, {{DNNL_ARG_SRC, in_layout(x, x_in, s)},
                        {DNNL_ARG_WEIGHTS, in_layout(w, w_in, s)},
                        {DNNL_ARG_BIAS, b},
                        {DNNL_ARG_DST, yy}});
    if (&yy != &y) dnnl::reorder(yy, y).execute(s, yy, y);
    if (g.c > 1) {
      memory& dxx = dx_in.get_desc() == dx.get_desc() ? dx : dx_in;
      backward_data.execute(s, {{DNNL_ARG_DIFF_DST, in_layout(dy, dy_in, s)},
                                {DNNL_ARG_WEIGHTS, in_layout(w, w_in2, s)},
                                {DNNL_ARG_DIFF_SRC, dxx}});
      if (&dxx != &dx) dnnl::reorder(dxx, dx).execute(s, dxx, dx);
    }
    memory& dww = dw_in.get_desc() == dw.get_desc() ? dw : dw_in;
    backward_weights.execute(s, {{DNNL_ARG_SRC, in_layout(x, x_in2, s)},
                                 {DNNL_ARG_DIFF_DST, in_layout(dy, dy_in2, s)},
                                 {DNNL_ARG_DIFF_WEIGHTS, dww},
                                 {DNNL_ARG_DIFF_BIAS, db}});
    if (&dww != &dw) dnnl::reorder(dww, dw).execute(s, dww, dw);
    s.wait();
  };
  step();
  const auto start = Clock::now();
  for (int i = 0; i < iterations; ++i) step();
  return 1e3 * seconds_since(start) / iterations;
}

void im2col(const float* x, const Geometry& g, float* col) {
  for (int c = 0; c < g.c; ++c)
    for (int ky = 0; ky < g.k; ++ky)
      for (int kx = 0; kx < g.k; ++kx) {
        float* row = col + ((c * g.k + ky) * g.k + kx) * g.h * g.w;
        for (int oy = 0; oy < g.h; ++oy)
          for (int ox = 0; ox < g.w; ++ox) {
            const int iy = oy + ky - g.p, ix = ox + kx - g.p;
            const bool inside = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
            row[oy * g.w + ox] = inside ? x[(c * g.h + iy) * g.w + ix] : 0.0f;
          }
      }
}

void col2im(const float* col, const Geometry& g, float* x) {
  std::memset(x, 0, sizeof(float) * static_cast<std::size_t>(g.c * g.h * g.w));
  for (int c = 0; c < g.c; ++c)
    for (int ky = 0; ky < g.k; ++ky)
      for (int kx = 0; kx < g.k; ++kx) {
        const float* row = col + ((c * g.k + ky) * g.k + kx) * g.h * g.w;
        for (int oy = 0; oy < g.h; ++oy)
          for (int ox = 0; ox < g.w; ++ox) {
            const int iy = oy + ky - g.p, ix = ox + kx - g.p;
            if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w)
              x[(c * g.h + iy) * g.w + ix] += row[oy * g.w + ox];
          }
      }
}

double im2col_step_ms(const Geometry& g, int iterations) {
  const int ck = g.c * g.k * g.k, hw = g.h * g.w;
  std::vector<float> x(static_cast<std::size_t>(g.n * g.c * hw), 0.1f),
      w(static_cast<std::size_t>(g.o * ck), 0.2f), y(static_cast<std::size_t>(g.n * g.o * hw)),
      dy(y.size(), 0.3f), dx(x.size()), dw(w.size()), col(static_cast<std::size_t>(ck * hw)),
      dcol(col.size());
  auto step = [&] {
    for (int n = 0; n < g.n; ++n) {
      im2col(&x[static_cast<std::size_t>(n * g.c * hw)], g, col.data());
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.o, hw, ck, 1, w.data(), ck,
                  col.data(), hw, 0, &y[static_cast<std::size_t>(n * g.o * hw)], hw);
      const float* dyn = &dy[static_cast<std::size_t>(n * g.o * hw)];
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.o, ck, hw, 1, dyn, hw, col.data(), hw,
                  1, dw.data(), ck);
      if (g.c == 1) continue;
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ck, hw, g.o, 1, w.data(), ck, dyn, hw, 0,
                  dcol.data(), hw);
      col2im(dcol.data(), g, &dx[static_cast<std::size_t>(n * g.c * hw)]);
    }
  };
  step();
  const auto start = Clock::now();
  for (int i = 0; i < iterations; ++i) step();
  return 1e3 * seconds_since(start) / iterations;
}

}  // namespace

int main() {
  omp_set_num_threads(2);
  openblas_set_num_threads(2);
  for (const Geometry g : {Geometry{128, 1, 28, 28, 32, 3, 1}, Geometry{128, 32, 14, 14, 64, 3, 1}})
    std::printf(
        "conv %d->%d channels, %dx%d: onednn-nchw %.2f ms  onednn-any %.2f ms  im2col %.2f ms\n",
        g.c, g.o, g.h, g.w, onednn_step_ms(g, false, 10), onednn_step_ms(g, true, 10),
        im2col_step_ms(g, 5));
  return 0;
}
