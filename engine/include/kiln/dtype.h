// Element types shared by tensors, dataset arrays and model files.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace kiln {

enum class DType { F32, F64, BF16, F16, I8, I16, I32, I64, U8 };

std::size_t size_of(DType dtype) noexcept;
// kiln's own short names: "f32", "bf16", "u8", ...
std::string_view name_of(DType dtype) noexcept;
std::optional<DType> dtype_from_name(std::string_view name) noexcept;
// safetensors' names: "F32", "BF16", "U8", ...
std::string_view safetensors_name(DType dtype) noexcept;
std::optional<DType> dtype_from_safetensors(std::string_view name) noexcept;

}  // namespace kiln
