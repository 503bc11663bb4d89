// The CPU twin of the fused preprocessing kernel (preprocess.cu): the same
// per-sample draws and per-pixel values (preprocess_sample.cuh), looped.
#include "kernels/preprocess.h"
#include "kernels/preprocess_sample.cuh"

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
  const std::int64_t pixels =
      static_cast<std::int64_t>(options.channels) * options.height * options.width;
  for (std::int64_t i = 0; i < n; ++i)
    preprocess_sample_cpu(in + i * pixels, options,
                          draw_sample_params(options, key.seed, key.epoch, sample_ids[i]),
                          out + i * pixels);
}

}  // namespace kiln::kernels
