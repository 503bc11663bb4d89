// The arithmetic of matrix products and convolutions (nn::Precision at the layer
// level): float32 throughout, or inputs rounded to bf16 with float32 accumulation
// and float32 outputs, master weights and gradients (autocast). Only CUDA twins
// honour BF16; the CPU computes float32 either way.
#pragma once

namespace kiln::ops {

enum class MathPrecision { F32, BF16 };

}  // namespace kiln::ops
