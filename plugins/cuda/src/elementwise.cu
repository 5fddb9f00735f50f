// Small per-element kernels: embedding rows, KV-cache stores (SwiGLU is fused into the
// preparation of the down projection's input, activations.cu).
#include <cuda_fp16.h>

#include "kernels.hpp"
#include "weight_formats.cuh"

namespace apr_cuda {
namespace {

constexpr int kThreads = 256;

// One block per token; each thread decodes whole chunks of the token's embedding row.
template <class F>
__global__ void __launch_bounds__(kThreads)
    embed_kernel(const uint8_t* __restrict__ table, size_t row_bytes, int cols, const int32_t* __restrict__ tokens,
                 float* x) {
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

template <typename T>
__device__ __forceinline__ T to_cache(float v);
template <>
__device__ __forceinline__ float to_cache<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half to_cache<__half>(float v) { return __float2half_rn(v); }

// One block per token: k and v rows [n_head_kv*head_dim] to cache[h][positions[t]][d].
template <typename T>
__global__ void __launch_bounds__(kThreads)
    store_kv_kernel(const float* __restrict__ k, const float* __restrict__ v, const int32_t* __restrict__ positions,
                    T* kc, T* vc, AttentionShape s) {
    const int t = blockIdx.x;
    const int pos = positions[t];
    const int kv_dim = s.n_head_kv * s.head_dim;
    for (int i = threadIdx.x; i < kv_dim; i += kThreads) {
        const int h = i / s.head_dim, d = i % s.head_dim;
        const size_t dst = (size_t(h) * s.n_ctx + pos) * s.head_dim + d;
        kc[dst] = to_cache<T>(k[size_t(t) * kv_dim + i]);
        vc[dst] = to_cache<T>(v[size_t(t) * kv_dim + i]);
    }
}

}  // namespace

void embed(const DeviceMatrix& table, const int32_t* tokens, int n_tokens, float* x, cudaStream_t stream) {
    dispatch_weight_format(table.type, [&](auto format) {
        using F = decltype(format);
        embed_kernel<F><<<n_tokens, kThreads, 0, stream>>>(table.data, table.row_bytes, table.cols, tokens, x);
    });
    check_launch("embedding kernel");
}

void store_kv(const float* k, const float* v, const int32_t* positions, int n_tokens, const KvLayer& kv,
              const AttentionShape& s, cudaStream_t stream) {
    if (kv.f16)
        store_kv_kernel<__half><<<n_tokens, kThreads, 0, stream>>>(k, v, positions, static_cast<__half*>(kv.k),
                                                                   static_cast<__half*>(kv.v), s);
    else
        store_kv_kernel<float><<<n_tokens, kThreads, 0, stream>>>(k, v, positions, static_cast<float*>(kv.k),
                                                                  static_cast<float*>(kv.v), s);
    check_launch("KV store kernel");
}

}  // namespace apr_cuda
