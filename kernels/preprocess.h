// Batch preprocessing for image training: u8 -> f32, normalize (mean/std), random
// crop with zero padding, horizontal flip and random erasing, fused into one pass.
// The CPU twin is here; the CUDA launcher is in preprocess_cuda.h. Both compute the
// per-sample draws and every output value with the same __host__ __device__ code
// (preprocess_sample.cuh), built without FMA contraction on either side, so their
// outputs are bit-identical.
//
// Layout: input u8 [n, H, W, C] (C last; [n, H, W] is C = 1), output f32
// [n, C, H, W]. Per output pixel (c, y, x) of a sample, in torchvision's order
// (RandomCrop(padding) -> RandomHorizontalFlip -> ToTensor -> Normalize ->
// RandomErasing): x' = flip ? W-1-x : x; source (y + dy - P, x' + dx - P), 0 outside
// the image; v = source / 255; out = (v - mean[c]) / std[c]; inside the erased
// rectangle out = erase_value.
//
// Draws: Philox-4x32-10 on the Augment stream (kiln::nn::RngStream::Augment = 4),
// counter (epoch << 40) | (sample_id << 2) | block for blocks 0 and 1 (sample_id <
// 2^38, epoch < 2^24), words in order: dx, dy, flip, erase, erase area, erase
// aspect ratio, erase top, erase left. A sample's augmentation depends only on
// (seed, epoch, sample id): not on the batch, the rank or the device.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>

namespace kiln::kernels {

inline constexpr int kMaxChannels = 4;

struct PreprocessOptions {
  int channels = 1, height = 0, width = 0;
  float mean[kMaxChannels] = {0, 0, 0, 0};  // per channel, on the [0, 1] scale
  float std[kMaxChannels] = {1, 1, 1, 1};
  int crop_padding = 0;          // P; 0: no cropping
  float flip_probability = 0;    // horizontal
  float erase_probability = 0;   // random erasing
  float erase_area_min = 0.02f;  // share of the image, as torchvision's scale
  float erase_area_max = 0.33f;
  float erase_ratio_min = 0.3f;  // aspect ratio h / w, drawn log-uniformly
  float erase_ratio_max = 3.3f;
  float erase_value = 0;  // written after normalization, as torchvision's value=0
};

// The random choices for one sample. Trivial (no member initializers), so that a
// kernel can hold one in shared memory; value-initialize it: SampleParams p{}.
struct SampleParams {
  int dx, dy;  // crop offsets in [0, 2P]
  bool flip;
  bool erase;
  int erase_top, erase_left, erase_height, erase_width;
};

struct AugmentKey {
  std::uint64_t seed = 0;
  std::int64_t epoch = 0;
};

// Pipeline YAML (the `preprocess:` mapping of a training stage), every key
// optional:
//   mean: [0.286]  std: [0.353]           per channel; one value for all channels
//   crop_padding: 4                       pixels of zero padding, then crop back
//   flip: 0.5                             horizontal flip probability
//   erase: 0.25                           random erasing probability
//   erase_area: [0.02, 0.33]              erased share of the image
//   erase_ratio: [0.3, 3.3]               erased rectangle's aspect ratio
//   erase_value: 0                        value written (after normalization)
// `channels`, `height` and `width` come from the data, not from YAML. ConfigError
// "preprocess.<key>: ..." for an unknown key or a bad value.
PreprocessOptions parse_preprocess_options(const nlohmann::json& yaml, int channels, int height,
                                           int width);
// ConfigError unless 1 <= channels <= kMaxChannels, height, width >= 1, std > 0,
// 0 <= crop_padding <= min(height, width) and the erase ranges are positive.
void check_preprocess_options(const PreprocessOptions& options);
// Options with every augmentation off: what evaluation uses.
PreprocessOptions without_augmentation(PreprocessOptions options);

SampleParams draw_sample_params_cpu(const PreprocessOptions& options, const AugmentKey& key,
                                    std::int64_t sample_id);
// One sample with given choices: in u8 [H, W, C], out f32 [C, H, W].
void preprocess_sample_cpu(const std::uint8_t* in, const PreprocessOptions& options,
                           const SampleParams& params, float* out);
// The CPU twin of the CUDA kernel: n samples, sample_ids[i] addressing the draws.
void preprocess_batch_cpu(const std::uint8_t* in, std::int64_t n, const std::int64_t* sample_ids,
                          const PreprocessOptions& options, const AugmentKey& key, float* out);

}  // namespace kiln::kernels
