// Causal attention over the KV cache. Decode steps and short runs: flash-decoding style. For each (head, token, split) a
// block of 4 warps scans its share of the keys 0..positions[t] in tiles of 32 (lane = key):
// scores against the query (held in shared memory, pre-scaled by 1/sqrt(head_dim)), an online
// softmax (running max m, running sum l), and the value rows accumulated with each lane owning
// head_dim/32 output dimensions. The warps and then the splits are merged by rescaling with
// exp(m_i - M), the splits by the last of a (head, token)'s blocks to finish (a counter per
// head and token), so there is no launch of its own for that. Splitting the keys over blocks
// keeps the GPU busy for a single decode token with a long context; the number of splits is
// fixed per launch, so a captured decode graph works for every position.
#include <cuda_fp16.h>

#include <cfloat>

#include <string>

#include "backend_error.hpp"
#include "kernels.hpp"
#include "act_quant.cuh"
#include "launch.cuh"

namespace apr_cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxHeadDim = 256;
constexpr int kDimsPerLane = kMaxHeadDim / 32;

__device__ __forceinline__ void load4(const float* p, float* out) {
    const float4 v = *reinterpret_cast<const float4*>(p);
    out[0] = v.x; out[1] = v.y; out[2] = v.z; out[3] = v.w;
}
__device__ __forceinline__ void load4(const __half* p, float* out) {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);
    const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&raw.x));
    const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&raw.y));
    out[0] = a.x; out[1] = a.y; out[2] = b.x; out[3] = b.y;
}
__device__ __forceinline__ float load1(const float* p) { return *p; }
__device__ __forceinline__ float load1(const __half* p) { return __half2float(*p); }

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// exp(m - M) as a weight for a partial result whose max is m; an empty partial (m = -inf) weighs 0.
__device__ __forceinline__ float rescale(float m, float M) { return m == -FLT_MAX ? 0.0f : expf(m - M); }

constexpr int kMaxSplits = 64;

// Merges the splits of one (head h, token t): weights exp(m_i - M) / L computed once in shared
// memory, then each thread sums one output dimension over the splits. With `q8` set (head_dim
// a multiple of 32, the output projection's input format Q8_0) the block also quantizes its
// head's output as the activation preparation kernel would (activations.cu: a warp holds one
// 32-value block; the same operations), which saves that kernel's launch. The partials are
// read through L2 (__ldcg): other blocks of the same launch may have written them.
__device__ __forceinline__ void combine_splits(const AttentionShape& s, int n_splits, const float* partial_acc,
                                               const float* partial_ml, float* out, int8_t* q8, float2* q8_ds,
                                               int h, int t) {
    __shared__ float weight_s[kMaxSplits];
    const int hd = s.head_dim;
    const size_t first = (size_t(t) * s.n_head + h) * n_splits;
    if (threadIdx.x < 32) {
        const int lane = threadIdx.x;
        float m[kMaxSplits / 32], l[kMaxSplits / 32];
        float M = -FLT_MAX;
#pragma unroll
        for (int j = 0; j < kMaxSplits / 32; ++j) {
            const int i = lane + 32 * j;
            m[j] = i < n_splits ? __ldcg(partial_ml + 2 * (first + i)) : -FLT_MAX;
            l[j] = i < n_splits ? __ldcg(partial_ml + 2 * (first + i) + 1) : 0.0f;
            M = fmaxf(M, m[j]);
        }
        M = warp_max(M);
        float L = 0.0f;
#pragma unroll
        for (int j = 0; j < kMaxSplits / 32; ++j) L += l[j] * rescale(m[j], M);
        L = warp_sum(L);
#pragma unroll
        for (int j = 0; j < kMaxSplits / 32; ++j) {
            const int i = lane + 32 * j;
            if (i < n_splits) weight_s[i] = rescale(m[j], M) / L;
        }
    }
    __syncthreads();
    const size_t o0 = (size_t(t) * s.n_head + h) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float sum = 0.0f;
#pragma unroll 4
        for (int i = 0; i < n_splits; ++i) sum += __ldcg(partial_acc + (first + i) * hd + d) * weight_s[i];
        out[o0 + d] = sum;
        if (q8) {  // the whole warp is inside the head: hd is a multiple of 32
            const float amax = warp_max(fabsf(sum));
            const float dq = amax / 127.0f;
            const float mul = dq != 0.0f ? 1.0f / dq : 0.0f;
            const int qv = int(rintf(sum * mul));
            const int qsum = __reduce_add_sync(0xffffffffu, qv);
            q8[o0 + d] = int8_t(qv);
            if ((threadIdx.x & 31) == 0) q8_ds[(o0 + d) / 32] = make_float2(__half2float(__float2half_rn(dq)), float(qsum));
        }
    }
}

// Q8_K quantization of the 256 values at x (one warp; lane l takes values 8l .. 8l+7), written
// to q (same offset as x from the row start: `q` and `ds` point at the row's block) as the
// activation preparation kernel does it (activations.cu): the same operations in the same order.
__device__ __forceinline__ void quantize_q8k_256(const float* x, int8_t* q_row, float2* ds_row, int lane) {
    float v[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = x[8 * lane + i];
    quantize_warp_256<ActFormat::Q8_K>(v, lane, q_row, ds_row, true);
}

template <typename T>
__global__ void __launch_bounds__(32 * kWarps)
    attention_partial_kernel(const float* __restrict__ q, const T* __restrict__ k_cache, const T* __restrict__ v_cache,
                             AttentionShape s, const int32_t* __restrict__ positions, int n_splits, float scale,
                             float* partial_acc, float* partial_ml, int* split_counters, float* out, int8_t* q8,
                             float2* q8_ds, bool q8k) {
    wait_for_previous_kernel();
    const int h = blockIdx.x, t = blockIdx.y, split = blockIdx.z;
    const int n_tokens = gridDim.y;
    const int hd = s.head_dim;
    const int kv_head = h / (s.n_head / s.n_head_kv);
    const int n_keys = positions[t] + 1;
    const int per_split = (n_keys + n_splits - 1) / n_splits;
    const int k_begin = split * per_split;
    const int k_end = min(n_keys, k_begin + per_split);

    __shared__ __align__(16) float q_s[kMaxHeadDim];
    __shared__ float warp_m[kWarps], warp_l[kWarps];
    __shared__ float warp_acc[kWarps][kMaxHeadDim];

    const float* qh = q + (size_t(t) * s.n_head + h) * hd;
    for (int d = threadIdx.x; d < hd; d += 32 * kWarps) q_s[d] = qh[d] * scale;
    __syncthreads();

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const T* K = k_cache + size_t(kv_head) * s.n_ctx * hd;
    const T* V = v_cache + size_t(kv_head) * s.n_ctx * hd;

    float m = -FLT_MAX, l = 0.0f;
    float acc[kDimsPerLane];
#pragma unroll
    for (int j = 0; j < kDimsPerLane; ++j) acc[j] = 0.0f;

    // Warp w takes tiles w, w + kWarps, ... of the split's keys; a split of fewer tiles than
    // warps (short contexts) is instead cut into kWarps contiguous runs of at most 32 keys, so
    // that the warps share its keys rather than the first ones walking them all. (Cutting longer
    // splits that way too would add a nearly empty tile to every warp: measured slower at 4096.)
    const int n_split_keys = k_end - k_begin;
    int w_begin = k_begin + 32 * warp, w_end = k_end, w_step = 32 * kWarps;
    if (n_split_keys > 0 && (n_split_keys + 31) / 32 < kWarps) {
        const int per_warp = (n_split_keys + kWarps - 1) / kWarps;
        w_begin = k_begin + warp * per_warp;
        w_end = min(k_end, w_begin + per_warp);
        w_step = 32;
    }
    for (int base = w_begin; base < w_end; base += w_step) {
        const int key = base + lane;
        const bool valid = key < w_end;
        float score = -FLT_MAX;
        if (valid) {
            const T* kr = K + size_t(key) * hd;
            float dot = 0.0f;
#pragma unroll 8
            for (int d = 0; d < hd; d += 4) {
                float kv[4];
                load4(kr + d, kv);
                dot += q_s[d] * kv[0] + q_s[d + 1] * kv[1] + q_s[d + 2] * kv[2] + q_s[d + 3] * kv[3];
            }
            score = dot;
        }
        const float m_new = fmaxf(m, warp_max(score));  // key `base` is valid, so m_new is finite
        const float correction = rescale(m, m_new);
        const float p = valid ? expf(score - m_new) : 0.0f;
        l = l * correction + warp_sum(p);
#pragma unroll
        for (int j = 0; j < kDimsPerLane; ++j) acc[j] *= correction;
        const int n_valid = min(32, w_end - base);
        // (unroll 8 measured slower on the H200: 7B Q4_0 tg128 390 against 411-427 tokens/s)
#pragma unroll 4
        for (int jj = 0; jj < n_valid; ++jj) {
            const float pj = __shfl_sync(0xffffffffu, p, jj);
            const T* vr = V + size_t(base + jj) * hd;
#pragma unroll
            for (int j = 0; j < kDimsPerLane; ++j) {
                const int d = lane + 32 * j;
                if (d < hd) acc[j] += pj * load1(vr + d);
            }
        }
        m = m_new;
    }

    if (lane == 0) {
        warp_m[warp] = m;
        warp_l[warp] = l;
    }
#pragma unroll
    for (int j = 0; j < kDimsPerLane; ++j) {
        const int d = lane + 32 * j;
        if (d < hd) warp_acc[warp][d] = acc[j];
    }
    __syncthreads();

    float M = -FLT_MAX;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, warp_m[w]);
    const size_t slot = (size_t(t) * s.n_head + h) * n_splits + split;
    (void)n_tokens;
    for (int d = threadIdx.x; d < hd; d += 32 * kWarps) {
        float sum = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) sum += warp_acc[w][d] * rescale(warp_m[w], M);
        partial_acc[slot * hd + d] = sum;
    }
    if (threadIdx.x == 0) {
        float L = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) L += warp_l[w] * rescale(warp_m[w], M);
        partial_ml[2 * slot] = M;
        partial_ml[2 * slot + 1] = L;
    }
    // The last of the blocks of a (head group, token) to finish merges all their splits (no
    // combine launch) and resets the group's counter for the next launch. A group is one head,
    // or with q8k the heads of one Q8_K block of 256 outputs, which it then also quantizes.
    const int group = q8k ? 256 / hd : 1;
    const int h0 = h - h % group;
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        int* counter = split_counters + size_t(t) * s.n_head + h0;
        last = atomicAdd(counter, 1) == n_splits * group - 1;
        if (last) *counter = 0;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    if (!q8k) {
        combine_splits(s, n_splits, partial_acc, partial_ml, out, q8, q8_ds, h, t);
        return;
    }
    for (int hh = h0; hh < h0 + group; ++hh) {
        combine_splits(s, n_splits, partial_acc, partial_ml, out, nullptr, nullptr, hh, t);
        __syncthreads();  // weight_s is reused by the next head, and warp 0 reads all outputs below
    }
    const size_t o0 = (size_t(t) * s.n_head + h0) * hd;
    if (threadIdx.x < 32) quantize_q8k_256(out + o0, q8 + o0, q8_ds + o0 / 32, threadIdx.x);
}

// Prefill: a block per (head, tile of kPrefillQueries consecutive tokens); each warp owns
// kQueriesPerWarp queries. Tiles of 32 keys and their values are loaded once into shared memory
// (coalesced) and used by all the block's queries, instead of every query reading the cache on
// its own; per query the same online softmax as above, lane = key for the scores and lane = output
// dimension for the values. No key splits: a prefill has blocks enough.
constexpr int kPrefillQueries = 16;
constexpr int kQueriesPerWarp = kPrefillQueries / kWarps;
constexpr int kKeyTile = 32;

size_t prefill_smem_bytes(int hd) {
    return size_t(kPrefillQueries * hd + kKeyTile * (hd + 4) + kKeyTile * hd) * sizeof(float);
}

template <typename T>
__global__ void __launch_bounds__(32 * kWarps)
    attention_prefill_kernel(const float* __restrict__ q, const T* __restrict__ k_cache,
                             const T* __restrict__ v_cache, AttentionShape s, const int32_t* __restrict__ positions,
                             int n_tokens, float scale, float* __restrict__ out) {
    wait_for_previous_kernel();
    extern __shared__ __align__(16) float smem[];
    const int hd = s.head_dim, kp = hd + 4;
    float* q_s = smem;                         // [kPrefillQueries][hd], scaled
    float* k_s = q_s + kPrefillQueries * hd;   // [kKeyTile][hd + 4]
    float* v_s = k_s + kKeyTile * kp;          // [kKeyTile][hd]
    const int h = blockIdx.x, t0 = blockIdx.y * kPrefillQueries;
    const int kv_head = h / (s.n_head / s.n_head_kv);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

    for (int i = threadIdx.x; i < kPrefillQueries * hd; i += blockDim.x) {
        const int t = t0 + i / hd;
        q_s[i] = t < n_tokens ? q[(size_t(t) * s.n_head + h) * hd + i % hd] * scale : 0.0f;
    }
    const int t_end = min(n_tokens, t0 + kPrefillQueries);
    int n_keys = 0;
    for (int t = t0; t < t_end; ++t) n_keys = max(n_keys, positions[t] + 1);
    int my_pos[kQueriesPerWarp];
#pragma unroll
    for (int qq = 0; qq < kQueriesPerWarp; ++qq) {
        const int t = t0 + warp * kQueriesPerWarp + qq;
        my_pos[qq] = t < n_tokens ? positions[t] : -1;
    }
    float m[kQueriesPerWarp], l[kQueriesPerWarp], acc[kQueriesPerWarp][kDimsPerLane];
#pragma unroll
    for (int qq = 0; qq < kQueriesPerWarp; ++qq) {
        m[qq] = -FLT_MAX;
        l[qq] = 0.0f;
#pragma unroll
        for (int j = 0; j < kDimsPerLane; ++j) acc[qq][j] = 0.0f;
    }
    const T* K = k_cache + size_t(kv_head) * s.n_ctx * hd;
    const T* V = v_cache + size_t(kv_head) * s.n_ctx * hd;

    for (int base = 0; base < n_keys; base += kKeyTile) {
        __syncthreads();  // the previous tile is consumed (and q_s written, the first time)
        const int hd4 = hd / 4;
        for (int i = threadIdx.x; i < kKeyTile * hd4; i += blockDim.x) {
            const int key = i / hd4, d = (i % hd4) * 4;
            float kv4[4] = {0.0f, 0.0f, 0.0f, 0.0f}, vv4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            if (base + key < n_keys) {
                load4(K + size_t(base + key) * hd + d, kv4);
                load4(V + size_t(base + key) * hd + d, vv4);
            }
            *reinterpret_cast<float4*>(k_s + key * kp + d) = make_float4(kv4[0], kv4[1], kv4[2], kv4[3]);
            *reinterpret_cast<float4*>(v_s + key * hd + d) = make_float4(vv4[0], vv4[1], vv4[2], vv4[3]);
        }
        __syncthreads();
        const int key = base + lane;
#pragma unroll
        for (int qq = 0; qq < kQueriesPerWarp; ++qq) {
            if (my_pos[qq] < base) continue;  // the whole tile is in this query's future (uniform per warp)
            const float* qr = q_s + (warp * kQueriesPerWarp + qq) * hd;
            const float* kr = k_s + lane * kp;
            float dot = 0.0f;
#pragma unroll 8
            for (int d = 0; d < hd; d += 4) {
                const float4 a = *reinterpret_cast<const float4*>(qr + d);
                const float4 b = *reinterpret_cast<const float4*>(kr + d);
                dot += a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
            }
            const bool valid = key <= my_pos[qq] && key < n_keys;
            const float score = valid ? dot : -FLT_MAX;
            const float m_new = fmaxf(m[qq], warp_max(score));  // key `base` is valid: finite
            const float correction = rescale(m[qq], m_new);
            const float p = valid ? expf(score - m_new) : 0.0f;
            l[qq] = l[qq] * correction + warp_sum(p);
#pragma unroll
            for (int j = 0; j < kDimsPerLane; ++j) acc[qq][j] *= correction;
            const int n_valid = min(kKeyTile, min(n_keys, my_pos[qq] + 1) - base);
#pragma unroll 4
            for (int jj = 0; jj < n_valid; ++jj) {
                const float pj = __shfl_sync(0xffffffffu, p, jj);
                const float* vr = v_s + jj * hd;
#pragma unroll
                for (int j = 0; j < kDimsPerLane; ++j) {
                    const int d = lane + 32 * j;
                    if (d < hd) acc[qq][j] += pj * vr[d];
                }
            }
            m[qq] = m_new;
        }
    }
#pragma unroll
    for (int qq = 0; qq < kQueriesPerWarp; ++qq) {
        const int t = t0 + warp * kQueriesPerWarp + qq;
        if (t >= n_tokens) continue;
        float* o = out + (size_t(t) * s.n_head + h) * hd;
#pragma unroll
        for (int j = 0; j < kDimsPerLane; ++j) {
            const int d = lane + 32 * j;
            if (d < hd) o[d] = acc[qq][j] / l[qq];
        }
    }
}

}  // namespace

bool attention_quantizes(const AttentionShape& s, int n_tokens, ActFormat format) {
    if (n_tokens >= kPrefillQueries || s.head_dim % 32 != 0) return false;
    if (format == ActFormat::Q8_0) return true;
    // Q8_K: whole heads per block of 256, whole blocks per token.
    return format == ActFormat::Q8_K && 256 % s.head_dim == 0 && s.n_head % (256 / s.head_dim) == 0;
}

void attention(const float* q, const KvLayer& kv, const AttentionShape& s, const int32_t* positions, int n_tokens,
               int n_splits, float* partial_acc, float* partial_ml, int* split_counters, float* out,
               ActFormat out_format, int8_t* out_q, float2* out_ds, cudaStream_t stream) {
    if (out_q && !attention_quantizes(s, n_tokens, out_format))
        throw BackendError(APR_ERR_INTERNAL, "attention: a quantized output asked for where the kernel cannot give it");
    const bool q8k = out_q && out_format == ActFormat::Q8_K;
    int8_t* out_q8 = out_q;
    float2* out_q8_ds = out_ds;
    if (n_splits < 1 || n_splits > kMaxSplits)
        throw BackendError(APR_ERR_INTERNAL, "attention: " + std::to_string(n_splits) + " key splits (1.." +
                                                 std::to_string(kMaxSplits) + " supported)");
    const float scale = 1.0f / sqrtf(float(s.head_dim));
    if (n_tokens >= kPrefillQueries) {
        const dim3 grid(s.n_head, (n_tokens + kPrefillQueries - 1) / kPrefillQueries);
        const size_t smem = prefill_smem_bytes(s.head_dim);
        if (kv.f16) {
            if (smem > 48 * 1024)
                cuda_check(cudaFuncSetAttribute(attention_prefill_kernel<__half>,
                                                cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
                           "cudaFuncSetAttribute (prefill attention)");
            launch_kernel("prefill attention kernel", attention_prefill_kernel<__half>, grid, 32 * kWarps, smem, stream,
                          q, static_cast<const __half*>(kv.k), static_cast<const __half*>(kv.v), s, positions,
                          n_tokens, scale, out);
        } else {
            if (smem > 48 * 1024)
                cuda_check(cudaFuncSetAttribute(attention_prefill_kernel<float>,
                                                cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
                           "cudaFuncSetAttribute (prefill attention)");
            launch_kernel("prefill attention kernel", attention_prefill_kernel<float>, grid, 32 * kWarps, smem, stream,
                          q, static_cast<const float*>(kv.k), static_cast<const float*>(kv.v), s, positions, n_tokens,
                          scale, out);
        }
        return;
    }
    const dim3 grid(s.n_head, n_tokens, n_splits);
    if (kv.f16)
        launch_kernel("attention kernel", attention_partial_kernel<__half>, grid, 32 * kWarps, 0, stream,
            q, static_cast<const __half*>(kv.k), static_cast<const __half*>(kv.v), s, positions, n_splits, scale,
            partial_acc, partial_ml, split_counters, out, out_q8, out_q8_ds, q8k);
    else
        launch_kernel("attention kernel", attention_partial_kernel<float>, grid, 32 * kWarps, 0, stream,
            q, static_cast<const float*>(kv.k), static_cast<const float*>(kv.v), s, positions, n_splits, scale,
            partial_acc, partial_ml, split_counters, out, out_q8, out_q8_ds, q8k);
    check_launch("attention kernel");
}

}  // namespace apr_cuda
