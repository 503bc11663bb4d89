// The convolution shapes the CPU and CUDA op benchmarks share: the CNN's 3x3,
// padding 1 convolutions at batch 128, and their multiply-add count.
#pragma once

#include "ops/conv.h"

#include <cstdint>

namespace kiln::bench {

inline ops::Conv2dGeometry conv3x3_geometry(std::int64_t channels, std::int64_t size,
                                            std::int64_t out) {
  return ops::Conv2dGeometry::square(128, channels, size, out, 3, 1, 1);
}

// Floating-point operations of one forward pass (2 per multiply-add).
inline double conv_flops(const ops::Conv2dGeometry& g) {
  return 2.0 * static_cast<double>(g.batch * g.out_channels * g.out_height() * g.out_width() *
                                   g.in_channels * g.kernel * g.kernel);
}

}  // namespace kiln::bench
