// The arithmetic of matrix products and convolutions (nn::Precision at the layer
// level): float32 throughout, or inputs rounded to bf16 with float32 accumulation
// and float32 outputs, master weights and gradients (autocast). CUDA twins always
// honour BF16. The CPU ops do where the CPU has bf16 instructions (cpu_has_bf16) and
// compute float32 elsewhere; the trainer says so (train/trainer.cpp).
#pragma once

#include <string>

namespace kiln::ops {

enum class MathPrecision { F32, BF16 };

// Whether oneDNN runs bf16 products on this CPU in hardware: AVX512-BF16 or
// AMX-BF16, as oneDNN detects them (its ONEDNN_MAX_CPU_ISA limit included).
bool cpu_has_bf16();
// Whether those bf16 products use AMX-BF16 (without it, AVX512-BF16 alone measured
// slower than float32: benchmarks/RESULTS.md).
bool cpu_has_amx();
// The arithmetic the CPU ops use for `requested`: BF16 only where cpu_has_bf16().
inline MathPrecision cpu_math(MathPrecision requested) {
  return requested == MathPrecision::BF16 && cpu_has_bf16() ? MathPrecision::BF16
                                                            : MathPrecision::F32;
}
// oneDNN's name for the instruction set it uses here, e.g. "avx512_core_amx".
std::string cpu_isa_name();

}  // namespace kiln::ops
