#include <kiln/dtype.h>

#include <array>

namespace kiln {
namespace {

struct DTypeInfo {
  DType dtype;
  std::size_t size;
  std::string_view name;
  std::string_view safetensors;
};

constexpr std::array<DTypeInfo, 9> kTypes{{
    {DType::F32, 4, "f32", "F32"},
    {DType::F64, 8, "f64", "F64"},
    {DType::BF16, 2, "bf16", "BF16"},
    {DType::F16, 2, "f16", "F16"},
    {DType::I8, 1, "i8", "I8"},
    {DType::I16, 2, "i16", "I16"},
    {DType::I32, 4, "i32", "I32"},
    {DType::I64, 8, "i64", "I64"},
    {DType::U8, 1, "u8", "U8"},
}};

const DTypeInfo& info(DType dtype) noexcept {
  for (const auto& entry : kTypes)
    if (entry.dtype == dtype) return entry;
  return kTypes[0];
}

}  // namespace

std::size_t size_of(DType dtype) noexcept { return info(dtype).size; }
std::string_view name_of(DType dtype) noexcept { return info(dtype).name; }
std::string_view safetensors_name(DType dtype) noexcept { return info(dtype).safetensors; }

std::optional<DType> dtype_from_name(std::string_view name) noexcept {
  for (const auto& entry : kTypes)
    if (entry.name == name) return entry.dtype;
  return std::nullopt;
}

std::optional<DType> dtype_from_safetensors(std::string_view name) noexcept {
  for (const auto& entry : kTypes)
    if (entry.safetensors == name) return entry.dtype;
  return std::nullopt;
}

}  // namespace kiln
