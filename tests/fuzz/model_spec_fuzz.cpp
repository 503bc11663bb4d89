// Stored model specs (nn/model_io.cpp, Model::load): the input is the spec's text,
// stored as "kiln.model" in an otherwise empty model file, so that everything
// Model::load does with a spec runs on it: the JSON parse with its depth bound and
// Model::build's checks of every layer. Any spec either builds (and then misses
// its tensors) or gives a DataError.
#include <kiln/error.h>
#include <kiln/nn/model.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <string>

#include "fuzz/fuzz_input.h"

namespace {

// A safetensors file with no tensors and {"kiln.model": spec} as its metadata;
// bytes that are not UTF-8 are replaced, as JSON strings must be text.
std::string model_file(const std::uint8_t* data, std::size_t size) {
  const std::string spec(reinterpret_cast<const char*>(data), size);
  const nlohmann::json header = {{"__metadata__", {{"kiln.model", spec}}}};
  std::string json = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  json.resize((json.size() + 7) / 8 * 8, ' ');
  const std::uint64_t length = json.size();
  std::string bytes(sizeof length, '\0');
  std::memcpy(bytes.data(), &length, sizeof length);  // little-endian on x86-64
  return bytes + json;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes = model_file(data, size);
  const auto file = kiln::fuzz::write_input(bytes.data(), bytes.size(), "model.safetensors");
  try {
    kiln::nn::Model::load(file);
  } catch (const kiln::DataError&) {
  }
  return 0;
}
