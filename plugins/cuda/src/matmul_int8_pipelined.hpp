// The prefill product for quantized weights at large token counts (matmul_int8_pipelined.cu).
#pragma once

#include <cuda_runtime.h>

#include "kernels.hpp"

namespace apr_cuda {

// Below this many tokens a 128-token tile would be mostly empty; matmul_tiled keeps its 64 x 64
// tiles there.
constexpr int kPipelinedMinTokens = 96;

// Y = W . X for a Q8_0 / Q8_K prepared input `in`, as matmul_tiled; returns false (launching
// nothing) when the weight type or layout does not suit the kernel: Q6_K (two scales per chunk),
// rows or a step's bytes not whole 16-byte copies, fewer than kPipelinedMinTokens tokens.
bool matmul_int8_pipelined(const DeviceMatrix& W, const ActInput& in, float* y, int ldy, const float* bias,
                           const float* residual, int ldr, cudaStream_t stream);

}  // namespace apr_cuda
