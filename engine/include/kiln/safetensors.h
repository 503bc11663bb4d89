// safetensors files: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}} padded with
// spaces to a multiple of 8 bytes, then the tensor bytes. Readable by the
// `safetensors` Python package.
#pragma once

#include <kiln/dtype.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kiln {

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;  // prod(shape) * size_of(dtype) bytes, little-endian
};

struct StoredTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::vector<std::uint8_t> bytes;
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::vector<StoredTensor> tensors;  // in file order

  const StoredTensor* find(const std::string& name) const;
};

// Writes atomically (temporary file + fsync + rename). Tensors are laid out in the
// order given.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Largest header accepted; the format itself caps it at 100 MB.
inline constexpr std::uint64_t kSafetensorsMaxHeader = 100u << 20;

// Reads and validates a file: header size within the file and the cap, valid JSON,
// known dtypes, offsets inside the data section, matching shape * dtype size,
// tensors tiling the data section exactly (no overlap, no hole, no trailing bytes,
// as the Rust reference reader requires), no name twice, string-only metadata.
// Throws DataError "<file>: <problem>". Allocates only sizes checked against the
// file's real size.
SafetensorsFile read_safetensors(const std::filesystem::path& path);

}  // namespace kiln
