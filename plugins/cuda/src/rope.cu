// RoPE on q and k in place. The angle of pair i at position p is
// p * freq_scale * base^(-2i/n_rot) (divided by rope_freqs[i] when given), computed in f64 as
// the reference does, so long positions do not lose the angle's low bits. rope_angles_kernel
// computes the cosines and sines once per forward pass (the costly f64 part, one pair per
// thread) into a table that every layer's rotation reads (here and in the fused epilogue of
// matvec_seg.cu). Each rope_kernel block handles kHeadsPerBlock heads (of q's and then k's) of
// one token, so that a decode step's single token is spread over several SMs instead of one: it
// rotates its heads and then writes its k heads (rotated) and the matching v heads into the KV
// cache, which saves a launch per layer.
#include <cuda_fp16.h>

#include "kernels.hpp"
#include "launch.cuh"

namespace apr_cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kHeadsPerBlock = 4;
constexpr int kAngleThreads = 64;  // pairs per block of rope_angles_kernel (n_rot/2 <= 128)

__device__ __forceinline__ void to_cache(float v, float* dst) { *dst = v; }
__device__ __forceinline__ void to_cache(float v, __half* dst) { *dst = __float2half_rn(v); }

__global__ void __launch_bounds__(kAngleThreads)
    rope_angles_kernel(const int32_t* __restrict__ positions, RopeParams p, double2* __restrict__ angles) {
    wait_for_previous_kernel();
    const int t = blockIdx.y, n_pairs = p.n_rot / 2;
    const int i = blockIdx.x * kAngleThreads + threadIdx.x;
    if (i >= n_pairs) return;
    const double pos = double(positions[t]);
    double theta = pos * double(p.freq_scale) * pow(double(p.freq_base), -2.0 * i / double(p.n_rot));
    if (p.freq_divisors) theta /= double(p.freq_divisors[i]);
    double sn, c;
    sincos(theta, &sn, &c);
    angles[size_t(t) * n_pairs + i] = make_double2(c, sn);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    rope_kernel(float* q, float* k, const float* __restrict__ v, const int32_t* __restrict__ positions, RopeParams p,
                T* kc, T* vc, AttentionShape s) {
    wait_for_previous_kernel();
    const int t = blockIdx.x;
    const int n_pairs = p.n_rot / 2;
    const double2* cs = p.angles + size_t(t) * n_pairs;
    const int heads = p.n_head + p.n_head_kv;
    const int h0 = blockIdx.y * kHeadsPerBlock, h1 = min(heads, h0 + kHeadsPerBlock);
    for (int idx = threadIdx.x; idx < (h1 - h0) * n_pairs; idx += kThreads) {
        const int h = h0 + idx / n_pairs, i = idx % n_pairs;
        float* head = h < p.n_head ? q + (size_t(t) * p.n_head + h) * p.head_dim
                                   : k + (size_t(t) * p.n_head_kv + (h - p.n_head)) * p.head_dim;
        const int a = p.rope_type == 1 ? i : 2 * i;  // APR_ROPE_NEOX : APR_ROPE_NORM
        const int b = p.rope_type == 1 ? i + n_pairs : 2 * i + 1;
        const double2 a_cs = cs[i];
        const double x0 = head[a], x1 = head[b], c = a_cs.x, sn = a_cs.y;
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

void rope_angles(const int32_t* positions, int n_tokens, const RopeParams& p, double2* angles, cudaStream_t stream) {
    if (p.n_rot / 2 == 0) return;  // nothing rotates
    const dim3 grid((p.n_rot / 2 + kAngleThreads - 1) / kAngleThreads, n_tokens);
    launch_kernel("rope angles kernel", rope_angles_kernel, grid, kAngleThreads, 0, stream, positions, p, angles);
}

void rope_and_store_kv(float* q, float* k, const float* v, const int32_t* positions, int n_tokens, const RopeParams& p,
                       const KvLayer& kv, const AttentionShape& s, cudaStream_t stream) {
    if (!p.angles) throw BackendError(APR_ERR_INTERNAL, "rope_and_store_kv: no angle table (rope_angles)");
    const dim3 grid(n_tokens, (p.n_head + p.n_head_kv + kHeadsPerBlock - 1) / kHeadsPerBlock);
    if (kv.f16)
        launch_kernel("rope kernel", rope_kernel<__half>, grid, kThreads, 0, stream, q, k, v, positions, p,
                      static_cast<__half*>(kv.k), static_cast<__half*>(kv.v), s);
    else
        launch_kernel("rope kernel", rope_kernel<float>, grid, kThreads, 0, stream, q, k, v, positions, p,
                      static_cast<float*>(kv.k), static_cast<float*>(kv.v), s);
}

}  // namespace apr_cuda
