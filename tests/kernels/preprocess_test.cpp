// The CPU twin of the fused preprocessing: geometry on a hand-made image, the
// per-sample draws, and the YAML options.
#include <kiln/error.h>

#include "kernels/preprocess.h"
#include "kernels/preprocess_sample.cuh"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

namespace kiln::kernels {
namespace {

constexpr int kH = 4, kW = 5;

// Pixel (y, x) of the hand-made image is 10 y + x + 1.
std::vector<std::uint8_t> image() {
  std::vector<std::uint8_t> pixels;
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) pixels.push_back(static_cast<std::uint8_t>(10 * y + x + 1));
  return pixels;
}

PreprocessOptions gray(int padding = 0) {
  PreprocessOptions options;
  options.height = kH;
  options.width = kW;
  options.mean[0] = 0.5f;
  options.std[0] = 0.25f;
  options.crop_padding = padding;
  return options;
}

float normalized(int value) { return (static_cast<float>(value) / 255.0f - 0.5f) / 0.25f; }

std::vector<float> apply(const PreprocessOptions& options, const SampleParams& params) {
  std::vector<float> out(static_cast<std::size_t>(options.channels * kH * kW));
  preprocess_sample_cpu(image().data(), options, params, out.data());
  return out;
}

// The value expected at (y, x) when it reads source pixel (sy, sx), 0 outside.
float source(int sy, int sx) {
  const bool inside = sy >= 0 && sy < kH && sx >= 0 && sx < kW;
  return normalized(inside ? 10 * sy + sx + 1 : 0);
}

TEST(PreprocessCpu, WithoutAugmentationItConvertsAndNormalizes) {
  const auto out = apply(gray(), SampleParams{});
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) EXPECT_FLOAT_EQ(out[y * kW + x], source(y, x)) << y << "," << x;
}

TEST(PreprocessCpu, CropShiftsThroughZeroPadding) {
  // Padding 1, offsets dx = 0, dy = 2: output (y, x) reads (y + 1, x - 1).
  const auto out = apply(gray(1), SampleParams{.dx = 0, .dy = 2});
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) EXPECT_FLOAT_EQ(out[y * kW + x], source(y + 1, x - 1));
  EXPECT_FLOAT_EQ(out[0], normalized(0));           // column 0 is padding
  EXPECT_FLOAT_EQ(out[1], normalized(11));          // (1, 0)
  EXPECT_FLOAT_EQ(out[3 * kW + 2], normalized(0));  // row 3 reads row 4: padding
}

TEST(PreprocessCpu, FlipMirrorsColumnsBeforeTheCropOffset) {
  const auto flipped = apply(gray(), SampleParams{.flip = true});
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) EXPECT_FLOAT_EQ(flipped[y * kW + x], source(y, kW - 1 - x));
  const auto both = apply(gray(2), SampleParams{.dx = 3, .dy = 2, .flip = true});
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x)
      EXPECT_FLOAT_EQ(both[y * kW + x], source(y, kW - 1 - x + 1)) << y << "," << x;
}

TEST(PreprocessCpu, ErasingFillsExactlyItsRectangle) {
  PreprocessOptions options = gray();
  options.erase_value = -7;
  const auto out = apply(
      options,
      SampleParams{
          .erase = true, .erase_top = 1, .erase_left = 2, .erase_height = 2, .erase_width = 3});
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) {
      const bool erased = y >= 1 && y < 3 && x >= 2 && x < 5;
      EXPECT_FLOAT_EQ(out[y * kW + x], erased ? -7.0f : source(y, x)) << y << "," << x;
    }
}

TEST(PreprocessCpu, ChannelsLastInChannelsFirstOut) {
  PreprocessOptions options;
  options.channels = 3;
  options.height = 1;
  options.width = 2;
  for (int c = 0; c < 3; ++c) options.mean[c] = 0, options.std[c] = 1.0f / 255.0f;
  const std::vector<std::uint8_t> in = {1, 2, 3, 4, 5, 6};  // (x=0: 1 2 3), (x=1: 4 5 6)
  std::vector<float> out(6);
  preprocess_sample_cpu(in.data(), options, SampleParams{}, out.data());
  const std::vector<float> expected = {1, 4, 2, 5, 3, 6};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(out[i], expected[i], 1e-4) << i;
}

TEST(PreprocessDraws, FollowTheOptions) {
  PreprocessOptions options = gray(2);
  options.flip_probability = 0.5f;
  options.erase_probability = 1;
  std::set<int> offsets;
  int flips = 0;
  for (std::int64_t id = 0; id < 400; ++id) {
    const SampleParams p = draw_sample_params_cpu(options, {.seed = 3, .epoch = 1}, id);
    offsets.insert(p.dx);
    offsets.insert(p.dy);
    flips += p.flip ? 1 : 0;
    ASSERT_TRUE(p.erase);
    EXPECT_GE(p.erase_top, 0);
    EXPECT_GE(p.erase_left, 0);
    EXPECT_LE(p.erase_top + p.erase_height, kH);
    EXPECT_LE(p.erase_left + p.erase_width, kW);
    EXPECT_GE(p.erase_height, 1);
    EXPECT_GE(p.erase_width, 1);
  }
  EXPECT_EQ(offsets, (std::set<int>{0, 1, 2, 3, 4}));
  EXPECT_GT(flips, 150);
  EXPECT_LT(flips, 250);
  options.flip_probability = 0;
  options.erase_probability = 0;
  const SampleParams none = draw_sample_params_cpu(options, {.seed = 3, .epoch = 1}, 5);
  EXPECT_FALSE(none.flip);
  EXPECT_FALSE(none.erase);
}

TEST(PreprocessDraws, DependOnSeedEpochAndSampleOnly) {
  PreprocessOptions options = gray(4);
  options.flip_probability = 0.5f;
  const auto draw = [&](std::uint64_t seed, std::int64_t epoch, std::int64_t id) {
    const SampleParams p = draw_sample_params_cpu(options, {.seed = seed, .epoch = epoch}, id);
    return std::make_tuple(p.dx, p.dy, p.flip);
  };
  EXPECT_EQ(draw(1, 2, 3), draw(1, 2, 3));
  int differences = 0;
  for (std::int64_t id = 0; id < 50; ++id)
    differences += (draw(1, 2, id) != draw(1, 3, id)) + (draw(1, 2, id) != draw(2, 2, id));
  EXPECT_GT(differences, 80);
}

TEST(PreprocessDraws, BatchIsEachSampleWithItsOwnDraws) {
  PreprocessOptions options = gray(1);
  options.flip_probability = 0.5f;
  options.erase_probability = 0.5f;
  const std::vector<std::uint8_t> one = image();
  std::vector<std::uint8_t> batch = one;
  batch.insert(batch.end(), one.begin(), one.end());
  const std::vector<std::int64_t> ids = {11, 12};
  std::vector<float> out(2 * kH * kW);
  preprocess_batch_cpu(batch.data(), 2, ids.data(), options, {.seed = 9, .epoch = 0}, out.data());
  for (int i = 0; i < 2; ++i) {
    std::vector<float> expected(kH * kW);
    preprocess_sample_cpu(one.data(), options,
                          draw_sample_params_cpu(options, {.seed = 9, .epoch = 0}, ids[i]),
                          expected.data());
    EXPECT_EQ(std::vector<float>(out.begin() + i * kH * kW, out.begin() + (i + 1) * kH * kW),
              expected);
  }
}

// preprocess_batch_cpu looks up the samples whose draws move nothing in a table of
// the 256 values a channel: every value, three channels with their own mean and std,
// samples of both kinds, must come out as the per-pixel formula gives them.
TEST(PreprocessDraws, TheLookupForSamplesThatMoveNothingIsThePixelFormula) {
  PreprocessOptions options;
  options.channels = 3;
  options.height = options.width = 16;  // 256 pixels: every u8 value in every channel
  const float means[] = {0.286f, 0.5f, 0.1f}, stds[] = {0.353f, 0.2f, 0.7f};
  for (int c = 0; c < 3; ++c) options.mean[c] = means[c], options.std[c] = stds[c];
  options.crop_padding = 1;
  options.flip_probability = 0.3f;
  std::vector<std::uint8_t> one(256 * 3);
  for (int k = 0; k < 256; ++k)
    for (int c = 0; c < 3; ++c)
      one[static_cast<std::size_t>(k * 3 + c)] = static_cast<std::uint8_t>((k + 85 * c) % 256);
  constexpr int kSamples = 40;
  std::vector<std::uint8_t> batch;
  std::vector<std::int64_t> ids;
  for (int i = 0; i < kSamples; ++i) {
    batch.insert(batch.end(), one.begin(), one.end());
    ids.push_back(100 + i);
  }
  std::vector<float> out(static_cast<std::size_t>(kSamples) * 768);
  const AugmentKey key{.seed = 5, .epoch = 2};
  preprocess_batch_cpu(batch.data(), kSamples, ids.data(), options, key, out.data());
  int still = 0;
  for (int i = 0; i < kSamples; ++i) {
    const SampleParams params =
        draw_sample_params_cpu(options, key, ids[static_cast<std::size_t>(i)]);
    still += moves_nothing(options, params);
    std::vector<float> expected(768);
    preprocess_sample_cpu(one.data(), options, params, expected.data());
    EXPECT_EQ(std::vector<float>(out.begin() + i * 768, out.begin() + (i + 1) * 768), expected)
        << i;
  }
  EXPECT_GT(still, 0);  // both kinds were drawn
  EXPECT_LT(still, kSamples);
}

TEST(PortableMath, ExpAndLogAreAccurate) {
  for (float x = -3; x <= 3; x += 0.37f)
    EXPECT_NEAR(portable_exp(x), std::exp(x), 2e-7 * std::exp(x)) << x;
  for (float x : {0.3f, 0.5f, 1.0f, 3.3f, 100.0f})
    EXPECT_NEAR(portable_log(x), std::log(x), 1e-6) << x;
}

TEST(PreprocessOptions, FromYaml) {
  const auto options = parse_preprocess_options({{"mean", {0.1, 0.2, 0.3}},
                                                 {"std", 0.5},
                                                 {"crop_padding", 4},
                                                 {"flip", 0.5},
                                                 {"erase", 0.25},
                                                 {"erase_area", {0.1, 0.2}},
                                                 {"erase_ratio", {0.5, 2}}},
                                                3, 32, 32);
  EXPECT_FLOAT_EQ(options.mean[2], 0.3f);
  EXPECT_FLOAT_EQ(options.std[1], 0.5f);
  EXPECT_EQ(options.crop_padding, 4);
  EXPECT_FLOAT_EQ(options.erase_area_max, 0.2f);
  const auto off = without_augmentation(options);
  EXPECT_EQ(off.crop_padding, 0);
  EXPECT_EQ(off.flip_probability, 0);
  EXPECT_FLOAT_EQ(off.mean[0], 0.1f);
}

TEST(PreprocessOptions, BadValuesNameTheirKey) {
  const auto message = [](const nlohmann::json& yaml) {
    try {
      parse_preprocess_options(yaml, 1, 28, 28);
    } catch (const ConfigError& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(message({{"flp", 0.5}}), ::testing::StartsWith("preprocess.flp: unknown key"));
  EXPECT_THAT(message({{"flip", 2}}),
              ::testing::HasSubstr("preprocess.flip: 2 is not a probability"));
  EXPECT_THAT(message({{"std", 0}}),
              ::testing::HasSubstr("preprocess.std: every value must be positive"));
  EXPECT_THAT(message({{"mean", {0.1, 0.2}}}),
              ::testing::HasSubstr("preprocess.mean: expected 1 or 1 values"));
  EXPECT_THAT(message({{"crop_padding", 40}}), ::testing::HasSubstr("preprocess.crop_padding"));
  EXPECT_THAT(message({{"erase_area", {0.5, 0.1}}}), ::testing::HasSubstr("preprocess.erase_area"));
  EXPECT_THROW(parse_preprocess_options(nullptr, 5, 28, 28), ConfigError);
}

}  // namespace
}  // namespace kiln::kernels
