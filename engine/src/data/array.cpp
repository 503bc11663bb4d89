#include <kiln/data/array.h>

#include <bit>
#include <cstring>
#include <functional>
#include <numeric>

namespace kiln::data {
namespace {

template <class T>
T load(const std::uint8_t* bytes, std::int64_t index) noexcept {
  T value;
  std::memcpy(&value, bytes + index * static_cast<std::int64_t>(sizeof(T)), sizeof(T));
  return value;
}

// IEEE half to float: the bit pattern rebuilt field by field (subnormals scaled).
float half_to_float(std::uint16_t half) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1fu;
  const std::uint32_t mantissa = half & 0x3ffu;
  if (exponent == 0) {
    const float magnitude = static_cast<float>(mantissa) * 0x1.0p-24f;
    return sign != 0 ? -magnitude : magnitude;
  }
  const std::uint32_t bits = exponent == 0x1f ? sign | 0x7f800000u | (mantissa << 13)
                                              : sign | ((exponent + 112u) << 23) | (mantissa << 13);
  return std::bit_cast<float>(bits);
}

}  // namespace

std::int64_t Array::elements() const {
  return std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
}

std::int64_t Array::row_elements() const {
  if (shape.empty()) return 1;
  return std::accumulate(shape.begin() + 1, shape.end(), std::int64_t{1}, std::multiplies<>());
}

bool is_integer(DType dtype) noexcept {
  return dtype == DType::U8 || dtype == DType::I8 || dtype == DType::I16 || dtype == DType::I32 ||
         dtype == DType::I64;
}

bool is_floating(DType dtype) noexcept { return !is_integer(dtype); }

std::int64_t element_as_integer(const std::uint8_t* bytes, DType dtype,
                                std::int64_t index) noexcept {
  switch (dtype) {
    case DType::U8:
      return bytes[index];
    case DType::I8:
      return load<std::int8_t>(bytes, index);
    case DType::I16:
      return load<std::int16_t>(bytes, index);
    case DType::I32:
      return load<std::int32_t>(bytes, index);
    case DType::I64:
      return load<std::int64_t>(bytes, index);
    default:
      return static_cast<std::int64_t>(element_as_double(bytes, dtype, index));
  }
}

double element_as_double(const std::uint8_t* bytes, DType dtype, std::int64_t index) noexcept {
  switch (dtype) {
    case DType::F32:
      return load<float>(bytes, index);
    case DType::F64:
      return load<double>(bytes, index);
    case DType::F16:
      return half_to_float(load<std::uint16_t>(bytes, index));
    case DType::BF16:
      return std::bit_cast<float>(static_cast<std::uint32_t>(load<std::uint16_t>(bytes, index))
                                  << 16);
    default:
      return static_cast<double>(element_as_integer(bytes, dtype, index));
  }
}

}  // namespace kiln::data
