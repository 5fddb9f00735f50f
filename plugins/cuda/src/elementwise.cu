// Embedding rows (SwiGLU is fused into the preparation of the down projection's input,
// activations.cu; KV-cache stores into the RoPE kernel, rope.cu).
#include <cuda_fp16.h>

#include "kernels.hpp"
#include "launch.cuh"
#include "weight_formats.cuh"

namespace apr_cuda {
namespace {

constexpr int kThreads = 256;

// One block per token; each thread decodes whole chunks of the token's embedding row.
template <class F>
__global__ void __launch_bounds__(kThreads)
    embed_kernel(const uint8_t* __restrict__ table, size_t row_bytes, int cols, const int32_t* __restrict__ tokens,
                 float* x) {
    wait_for_previous_kernel();
    const int t = blockIdx.x;
    const uint8_t* row = table + size_t(tokens[t]) * row_bytes;
    float* out = x + size_t(t) * cols;
    const int n_chunks = (cols + 31) / 32;
    for (int c = threadIdx.x; c < n_chunks; c += kThreads) {
        float w[32];
        F::chunk(row, c, cols, w);
#pragma unroll
        for (int i = 0; i < 32; ++i)
            if (c * 32 + i < cols) out[c * 32 + i] = w[i];
    }
}

}  // namespace

void embed(const DeviceMatrix& table, const int32_t* tokens, int n_tokens, float* x, cudaStream_t stream) {
    dispatch_weight_format(table.type, [&](auto format) {
        using F = decltype(format);
        launch_kernel("embedding kernel", embed_kernel<F>, n_tokens, kThreads, 0, stream, table.data, table.row_bytes,
                      table.cols, tokens, x);
    });
    check_launch("embedding kernel");
}

}  // namespace apr_cuda
