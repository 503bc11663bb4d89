// The `preprocess:` mapping of a pipeline stage -> PreprocessOptions, every value
// checked (see preprocess.h for the keys).
#include "kernels/preprocess.h"

#include <kiln/error.h>

#include <fmt/format.h>

#include <array>
#include <string>

namespace kiln::kernels {
namespace {

constexpr std::array<const char*, 8> kKeys = {"mean",  "std",        "crop_padding", "flip",
                                              "erase", "erase_area", "erase_ratio",  "erase_value"};

[[noreturn]] void fail(const std::string& key, const std::string& problem) {
  throw ConfigError(fmt::format("preprocess.{}: {}", key, problem));
}

float number(const nlohmann::json& value, const std::string& key) {
  if (!value.is_number()) fail(key, fmt::format("expected a number, got {}", value.dump()));
  return value.get<float>();
}

float probability(const nlohmann::json& yaml, const char* key) {
  if (!yaml.contains(key)) return 0;
  const float p = number(yaml[key], key);
  if (p < 0 || p > 1) fail(key, fmt::format("{} is not a probability in [0, 1]", p));
  return p;
}

// A [low, high] pair with 0 < low <= high (and high <= limit).
void read_pair(const nlohmann::json& yaml, const char* key, float limit, float& low, float& high) {
  if (!yaml.contains(key)) return;
  const nlohmann::json& value = yaml[key];
  if (!value.is_array() || value.size() != 2) fail(key, "expected [low, high]");
  low = number(value[0], key);
  high = number(value[1], key);
  if (!(low > 0 && low <= high && high <= limit))
    fail(key, fmt::format("[{}, {}] must satisfy 0 < low <= high <= {}", low, high, limit));
}

void read_channels(const nlohmann::json& yaml, const char* key, int channels, float* out) {
  if (!yaml.contains(key)) return;
  const nlohmann::json& value = yaml[key];
  const nlohmann::json list = value.is_array() ? value : nlohmann::json::array({value});
  if (list.size() != 1 && static_cast<int>(list.size()) != channels)
    fail(key,
         fmt::format("expected 1 or {} values (one per channel), got {}", channels, list.size()));
  for (int c = 0; c < channels; ++c) out[c] = number(list[list.size() == 1 ? 0 : c], key);
}

}  // namespace

PreprocessOptions parse_preprocess_options(const nlohmann::json& yaml, int channels, int height,
                                           int width) {
  if (!yaml.is_null() && !yaml.is_object()) fail("", "expected a mapping");
  PreprocessOptions options;
  options.channels = channels;
  options.height = height;
  options.width = width;
  check_preprocess_options(options);
  if (yaml.is_null()) return options;
  for (const auto& [key, value] : yaml.items())
    if (std::find_if(kKeys.begin(), kKeys.end(), [&](const char* k) { return key == k; }) ==
        kKeys.end())
      fail(key,
           "unknown key; expected mean, std, crop_padding, flip, erase, erase_area, "
           "erase_ratio, erase_value");
  read_channels(yaml, "mean", channels, options.mean);
  read_channels(yaml, "std", channels, options.std);
  if (yaml.contains("crop_padding")) {
    if (!yaml["crop_padding"].is_number_integer())
      fail("crop_padding", fmt::format("expected an integer, got {}", yaml["crop_padding"].dump()));
    options.crop_padding = yaml["crop_padding"].get<int>();
  }
  options.flip_probability = probability(yaml, "flip");
  options.erase_probability = probability(yaml, "erase");
  read_pair(yaml, "erase_area", 1.0f, options.erase_area_min, options.erase_area_max);
  read_pair(yaml, "erase_ratio", 100.0f, options.erase_ratio_min, options.erase_ratio_max);
  if (yaml.contains("erase_value"))
    options.erase_value = number(yaml["erase_value"], "erase_value");
  check_preprocess_options(options);
  return options;
}

void check_preprocess_options(const PreprocessOptions& o) {
  if (o.channels < 1 || o.channels > kMaxChannels || o.height < 1 || o.width < 1)
    throw ConfigError(
        fmt::format("preprocess: images of {} channels of {}x{} are not supported "
                    "(1 to {} channels)",
                    o.channels, o.height, o.width, kMaxChannels));
  for (int c = 0; c < o.channels; ++c)
    if (!(o.std[c] > 0)) fail("std", "every value must be positive");
  if (o.crop_padding < 0 || o.crop_padding > std::min(o.height, o.width))
    fail("crop_padding",
         fmt::format("expected an integer in [0, {}]", std::min(o.height, o.width)));
  if (!(o.erase_area_min > 0 && o.erase_area_min <= o.erase_area_max && o.erase_area_max <= 1))
    fail("erase_area", "must satisfy 0 < low <= high <= 1");
  if (!(o.erase_ratio_min > 0 && o.erase_ratio_min <= o.erase_ratio_max))
    fail("erase_ratio", "must satisfy 0 < low <= high");
}

PreprocessOptions without_augmentation(PreprocessOptions options) {
  options.crop_padding = 0;
  options.flip_probability = 0;
  options.erase_probability = 0;
  return options;
}

}  // namespace kiln::kernels
