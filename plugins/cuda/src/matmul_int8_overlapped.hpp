// The default prefill product for quantized weights at large token counts
// (matmul_int8_overlapped.cu), tried by matmul_int8_pipelined once its requirements hold.
#pragma once

#include <cuda_runtime.h>

#include "kernels.hpp"

namespace apr_cuda {

// Y = W . X as matmul_int8_pipelined, for inputs that already meet its requirements; returns
// false (launching nothing) when APR_CUDA_MM_V2=0 or the format does not fit the kernel's shared
// memory (Q8_0) or has two scales per chunk (Q6_K).
bool matmul_int8_overlapped(const DeviceMatrix& W, const ActInput& in, float* y, int ldy, const float* bias,
                            const float* residual, int ldr, cudaStream_t stream);

}  // namespace apr_cuda
