// The CPU twin of the fused preprocessing kernel (preprocess.cu): the same
// per-sample draws and per-pixel values (preprocess_sample.cuh), looped.
#include "kernels/preprocess.h"
#include "kernels/preprocess_sample.cuh"

#include <vector>

namespace kiln::kernels {

SampleParams draw_sample_params_cpu(const PreprocessOptions& options, const AugmentKey& key,
                                    std::int64_t sample_id) {
  return draw_sample_params(options, key.seed, key.epoch, sample_id);
}

void preprocess_sample_cpu(const std::uint8_t* in, const PreprocessOptions& options,
                           const SampleParams& params, float* out) {
  for (int c = 0; c < options.channels; ++c)
    for (int y = 0; y < options.height; ++y)
      for (int x = 0; x < options.width; ++x)
        *out++ = preprocess_pixel(in, options, params, c, y, x);
}

void preprocess_batch_cpu(const std::uint8_t* in, std::int64_t n, const std::int64_t* sample_ids,
                          const PreprocessOptions& options, const AugmentKey& key, float* out) {
  const std::int64_t area = static_cast<std::int64_t>(options.height) * options.width;
  const std::int64_t pixels = options.channels * area;
  // A sample whose draws move nothing is each pixel normalized in place: one of 256
  // values a channel, computed here by the shared formulas, so a lookup gives the
  // same bits as preprocess_pixel at a tenth of its cost (two divisions and the
  // window tests a pixel: a fifth of the MLP's training step, on its critical path).
  std::vector<float> table(static_cast<std::size_t>(options.channels) * 256);
  for (int c = 0; c < options.channels; ++c)
    for (int v = 0; v < 256; ++v)
      table[static_cast<std::size_t>(c * 256 + v)] =
          normalized(options, c, unit_pixel(static_cast<std::uint8_t>(v)));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint8_t* image = in + i * pixels;
    float* sample = out + i * pixels;
    const SampleParams params = draw_sample_params(options, key.seed, key.epoch, sample_ids[i]);
    if (!moves_nothing(options, params)) {
      preprocess_sample_cpu(image, options, params, sample);
      continue;
    }
    for (int c = 0; c < options.channels; ++c) {
      const float* lookup = table.data() + c * 256;
      for (std::int64_t k = 0; k < area; ++k)
        sample[c * area + k] = lookup[image[k * options.channels + c]];
    }
  }
}

}  // namespace kiln::kernels
