// KILN_HOST_DEVICE marks a function that both the CPU twin and the CUDA kernel call:
// __host__ __device__ under nvcc, a plain inline function elsewhere. Code written
// this way is the single source of a twin pair's arithmetic; it is built without
// FMA contraction on both sides (-ffp-contract=off, --fmad=false), so the CPU and
// the GPU round alike wherever they call the same operations.
#pragma once

#if defined(__CUDACC__)
#define KILN_HOST_DEVICE __host__ __device__
#else
#define KILN_HOST_DEVICE
#endif
