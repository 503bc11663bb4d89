// The per-sample draws and the per-pixel value of the fused preprocessing, as
// __host__ __device__ code shared by the CPU twin (preprocess.cpp) and the CUDA
// kernel (preprocess.cu). Only IEEE-exact operations (+ - * / sqrt, conversions)
// are used, and both sides are compiled without FMA contraction, so CPU and GPU
// give the same bits; exp and log are series here because the device's expf and
// logf and glibc's differ in the last place.
#pragma once

#include "kernels/philox.cuh"
#include "kernels/preprocess.h"

#include <math.h>  // sqrtf, ldexpf, frexpf: the same names in host and device code

namespace kiln::kernels {

inline constexpr std::uint32_t kAugmentStream = 4;  // kiln::nn::RngStream::Augment

// e^x: x = k ln2 + r with |r| <= ln2 / 2, e^r by its Taylor series to degree 8
// (relative error below 1e-8 there), scaled by 2^k exactly.
KILN_HOST_DEVICE inline float portable_exp(float x) {
  const int k = static_cast<int>(x * 1.44269504f + (x < 0 ? -0.5f : 0.5f));
  const float r = x - static_cast<float>(k) * 0.693147181f;
  float sum = 1.0f, term = 1.0f;
  for (int i = 1; i <= 8; ++i) {
    term = term * r / static_cast<float>(i);
    sum = sum + term;
  }
  return ldexpf(sum, k);
}

// ln x for x > 0: x = m 2^e with m in [0.5, 1), ln m = 2 atanh((m-1)/(m+1)) by its
// series (|z| <= 1/3, nine terms: error below 1e-9).
KILN_HOST_DEVICE inline float portable_log(float x) {
  int e = 0;
  const float m = frexpf(x, &e);
  const float z = (m - 1.0f) / (m + 1.0f);
  float sum = 0.0f, power = z;
  for (int i = 1; i <= 17; i += 2) {
    sum = sum + power / static_cast<float>(i);
    power = power * z * z;
  }
  return 2.0f * sum + static_cast<float>(e) * 0.693147181f;
}

KILN_HOST_DEVICE inline int clamp_int(int value, int low, int high) {
  return value < low ? low : (value > high ? high : value);
}

KILN_HOST_DEVICE inline void draw_erase(const PreprocessOptions& o, const std::uint32_t* word,
                                        SampleParams& p) {
  const float area =
      static_cast<float>(o.height * o.width) *
      (o.erase_area_min + uniform01(word[4]) * (o.erase_area_max - o.erase_area_min));
  // log(ratio) uniform in [log min, log max].
  const float log_min = portable_log(o.erase_ratio_min);
  const float log_max = portable_log(o.erase_ratio_max);
  const float ratio = portable_exp(log_min + uniform01(word[5]) * (log_max - log_min));
  p.erase_height = clamp_int(static_cast<int>(sqrtf(area * ratio) + 0.5f), 1, o.height);
  p.erase_width = clamp_int(static_cast<int>(sqrtf(area / ratio) + 0.5f), 1, o.width);
  p.erase_top = static_cast<int>(
      uniform_below(word[6], static_cast<std::uint32_t>(o.height - p.erase_height + 1)));
  p.erase_left = static_cast<int>(
      uniform_below(word[7], static_cast<std::uint32_t>(o.width - p.erase_width + 1)));
}

KILN_HOST_DEVICE inline SampleParams draw_sample_params(const PreprocessOptions& o,
                                                        std::uint64_t seed, std::int64_t epoch,
                                                        std::int64_t sample_id) {
  const std::uint64_t base =
      (static_cast<std::uint64_t>(epoch) << 40) | (static_cast<std::uint64_t>(sample_id) << 2);
  const Philox4 first = philox(seed, kAugmentStream, base);
  const Philox4 second = philox(seed, kAugmentStream, base | 1u);
  const std::uint32_t word[8] = {first.word[0],  first.word[1],  first.word[2],  first.word[3],
                                 second.word[0], second.word[1], second.word[2], second.word[3]};
  SampleParams p{};
  const auto span = static_cast<std::uint32_t>(2 * o.crop_padding + 1);
  p.dx = static_cast<int>(uniform_below(word[0], span));
  p.dy = static_cast<int>(uniform_below(word[1], span));
  p.flip = uniform01(word[2]) < o.flip_probability;
  p.erase = uniform01(word[3]) < o.erase_probability;
  if (p.erase) draw_erase(o, word, p);
  return p;
}

// A u8 pixel in [0, 1], normalized for channel c. A pixel of the padding is 0.
KILN_HOST_DEVICE inline float normalized(const PreprocessOptions& o, int c, float value) {
  return (value - o.mean[c]) / o.std[c];
}
KILN_HOST_DEVICE inline float unit_pixel(std::uint8_t pixel) {
  return static_cast<float>(pixel) / 255.0f;
}

// Whether the sample's draws change no pixel's place or value: then its output is
// each pixel normalized where it is.
KILN_HOST_DEVICE inline bool moves_nothing(const PreprocessOptions& o, const SampleParams& p) {
  return !p.erase && !p.flip && p.dx == o.crop_padding && p.dy == o.crop_padding;
}

// Output value at channel c, row y, column x of a sample whose u8 [H, W, C] image
// starts at `image`.
KILN_HOST_DEVICE inline float preprocess_pixel(const std::uint8_t* image,
                                               const PreprocessOptions& o, const SampleParams& p,
                                               int c, int y, int x) {
  if (p.erase && y >= p.erase_top && y < p.erase_top + p.erase_height && x >= p.erase_left &&
      x < p.erase_left + p.erase_width)
    return o.erase_value;
  const int column = p.flip ? o.width - 1 - x : x;
  const int source_y = y + p.dy - o.crop_padding;
  const int source_x = column + p.dx - o.crop_padding;
  const bool inside = source_y >= 0 && source_y < o.height && source_x >= 0 && source_x < o.width;
  return normalized(
      o, c, inside ? unit_pixel(image[(source_y * o.width + source_x) * o.channels + c]) : 0.0f);
}

}  // namespace kiln::kernels
