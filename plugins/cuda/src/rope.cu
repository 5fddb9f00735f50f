// RoPE on q and k in place. The angle of pair i at position p is
// p * freq_scale * base^(-2i/n_rot) (divided by rope_freqs[i] when given), computed in f64 as
// the reference does, so long positions do not lose the angle's low bits. Each block handles
// one token: it computes the n_rot/2 cosines and sines once into shared memory (the costly f64
// part, one pair per thread), then rotates every head of q and k with them, and then writes the
// token's (rotated) k and its v into the KV cache, which saves a launch per layer.
#include <cuda_fp16.h>

#include "kernels.hpp"
#include "launch.cuh"

namespace apr_cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxPairs = 128;  // head_dim <= 256 (model_layout.cpp)

__device__ __forceinline__ void to_cache(float v, float* dst) { *dst = v; }
__device__ __forceinline__ void to_cache(float v, __half* dst) { *dst = __float2half_rn(v); }

template <typename T>
__global__ void __launch_bounds__(kThreads)
    rope_kernel(float* q, float* k, const float* __restrict__ v, const int32_t* __restrict__ positions, RopeParams p,
                T* kc, T* vc, AttentionShape s) {
    wait_for_previous_kernel();
    __shared__ double cos_s[kMaxPairs], sin_s[kMaxPairs];
    const int t = blockIdx.x;
    const double pos = double(positions[t]);
    const int n_pairs = p.n_rot / 2;
    for (int i = threadIdx.x; i < n_pairs; i += kThreads) {
        double theta = pos * double(p.freq_scale) * pow(double(p.freq_base), -2.0 * i / double(p.n_rot));
        if (p.freq_divisors) theta /= double(p.freq_divisors[i]);
        sincos(theta, &sin_s[i], &cos_s[i]);
    }
    __syncthreads();
    const int heads = p.n_head + p.n_head_kv;
    for (int idx = threadIdx.x; idx < heads * n_pairs; idx += kThreads) {
        const int h = idx / n_pairs, i = idx % n_pairs;
        float* head = h < p.n_head ? q + (size_t(t) * p.n_head + h) * p.head_dim
                                   : k + (size_t(t) * p.n_head_kv + (h - p.n_head)) * p.head_dim;
        const int a = p.rope_type == 1 ? i : 2 * i;  // APR_ROPE_NEOX : APR_ROPE_NORM
        const int b = p.rope_type == 1 ? i + n_pairs : 2 * i + 1;
        const double x0 = head[a], x1 = head[b], c = cos_s[i], sn = sin_s[i];
        head[a] = float(x0 * c - x1 * sn);
        head[b] = float(x0 * sn + x1 * c);
    }
    // Each cache row [h][pos] gets head_dim values of k (some rotated by other threads) and v.
    __syncthreads();
    const int cache_pos = positions[t];
    const int kv_dim = s.n_head_kv * s.head_dim;
    for (int i = threadIdx.x; i < kv_dim; i += kThreads) {
        const int h = i / s.head_dim, d = i % s.head_dim;
        const size_t dst = (size_t(h) * s.n_ctx + cache_pos) * s.head_dim + d;
        to_cache(k[size_t(t) * kv_dim + i], kc + dst);
        to_cache(v[size_t(t) * kv_dim + i], vc + dst);
    }
}

}  // namespace

void rope_and_store_kv(float* q, float* k, const float* v, const int32_t* positions, int n_tokens, const RopeParams& p,
                       const KvLayer& kv, const AttentionShape& s, cudaStream_t stream) {
    if (kv.f16)
        launch_kernel("rope kernel", rope_kernel<__half>, n_tokens, kThreads, 0, stream, q, k, v, positions, p,
                      static_cast<__half*>(kv.k), static_cast<__half*>(kv.v), s);
    else
        launch_kernel("rope kernel", rope_kernel<float>, n_tokens, kThreads, 0, stream, q, k, v, positions, p,
                      static_cast<float*>(kv.k), static_cast<float*>(kv.v), s);
}

}  // namespace apr_cuda
