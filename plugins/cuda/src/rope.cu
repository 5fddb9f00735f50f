// RoPE on q and k in place. The angle of pair i at position p is
// p * freq_scale * base^(-2i/n_rot) (divided by rope_freqs[i] when given), computed in f64 as
// the reference does, so long positions do not lose the angle's low bits. Each block handles
// kHeadsPerBlock heads (of q's and then k's) of one token, so that a decode step's single token
// is spread over several SMs instead of one: it computes the n_rot/2 cosines and sines into
// shared memory (the costly f64 part, one pair per thread), rotates its heads with them, and
// then writes its k heads (rotated) and the matching v heads into the KV cache, which saves a
// launch per layer.
#include <cuda_fp16.h>

#include "kernels.hpp"
#include "launch.cuh"

namespace apr_cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxPairs = 128;  // head_dim <= 256 (model_layout.cpp)
constexpr int kHeadsPerBlock = 4;

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
    const int h0 = blockIdx.y * kHeadsPerBlock, h1 = min(heads, h0 + kHeadsPerBlock);
    for (int idx = threadIdx.x; idx < (h1 - h0) * n_pairs; idx += kThreads) {
        const int h = h0 + idx / n_pairs, i = idx % n_pairs;
        float* head = h < p.n_head ? q + (size_t(t) * p.n_head + h) * p.head_dim
                                   : k + (size_t(t) * p.n_head_kv + (h - p.n_head)) * p.head_dim;
        const int a = p.rope_type == 1 ? i : 2 * i;  // APR_ROPE_NEOX : APR_ROPE_NORM
        const int b = p.rope_type == 1 ? i + n_pairs : 2 * i + 1;
        const double x0 = head[a], x1 = head[b], c = cos_s[i], sn = sin_s[i];
        head[a] = float(x0 * c - x1 * sn);
        head[b] = float(x0 * sn + x1 * c);
    }
    // Each cache row [h][pos] of this block's k heads gets head_dim values of k (rotated by
    // other threads of the block) and of v.
    __syncthreads();
    const int kv0 = max(h0, p.n_head) - p.n_head, kv1 = h1 - p.n_head;
    if (kv1 <= kv0) return;
    const int cache_pos = positions[t];
    const int kv_dim = s.n_head_kv * s.head_dim;
    for (int i = kv0 * s.head_dim + threadIdx.x; i < kv1 * s.head_dim; i += kThreads) {
        const int h = i / s.head_dim, d = i % s.head_dim;
        const size_t dst = (size_t(h) * s.n_ctx + cache_pos) * s.head_dim + d;
        to_cache(k[size_t(t) * kv_dim + i], kc + dst);
        to_cache(v[size_t(t) * kv_dim + i], vc + dst);
    }
}

}  // namespace

void rope_and_store_kv(float* q, float* k, const float* v, const int32_t* positions, int n_tokens, const RopeParams& p,
                       const KvLayer& kv, const AttentionShape& s, cudaStream_t stream) {
    const dim3 grid(n_tokens, (p.n_head + p.n_head_kv + kHeadsPerBlock - 1) / kHeadsPerBlock);
    if (kv.f16)
        launch_kernel("rope kernel", rope_kernel<__half>, grid, kThreads, 0, stream, q, k, v, positions, p,
                      static_cast<__half*>(kv.k), static_cast<__half*>(kv.v), s);
    else
        launch_kernel("rope kernel", rope_kernel<float>, grid, kThreads, 0, stream, q, k, v, positions, p,
                      static_cast<float*>(kv.k), static_cast<float*>(kv.v), s);
}

}  // namespace apr_cuda
