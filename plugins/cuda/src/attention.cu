// Causal attention over the KV cache. Decode steps and short runs: flash-decoding style. The keys
// 0..positions[t] of each (head, token) are cut into splits of a fixed size (split_keys, or more
// where n_splits of those do not cover the context), one block of 4 warps per split. Blocks past
// a short context's last split return at once, so one grid (n_splits per launch) serves a
// captured decode graph at every position while a short context costs only its own keys, and a
// context of one split writes its output directly. Otherwise the last of a (head, token)'s blocks
// to finish merges the splits (a counter per head and token: no launch of its own for that).
//
// In a block, each warp takes steps of kStep keys. Lane l holds dimensions 4l..4l+3 (+128 per
// further column) of the query, and a step loads its kStep key rows and value rows at once, one
// coalesced 16-byte load per lane and row: the values do not depend on the scores, so a step
// costs one memory round trip instead of one per key (the latency of those round trips, not
// bandwidth, is what a short context's attention waits on). The step's dot products are summed
// over the lanes by a transposing reduction, then the online softmax (running max m, running
// sum l) rescales and accumulates. Warps, then splits, are merged by rescaling with exp(m_i - M).
#include <cuda_fp16.h>

#include <algorithm>
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
constexpr int kMaxSplits = 128;
// Keys per split are a multiple of this: a whole step for every warp of the block with an f32
// cache (8 keys), half of them with f16 (16 keys per step).
constexpr int kSplitKeysUnit = 32;

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

// A lane's 4 values of one cache row as loaded: f32 as a float4 (16 bytes), f16 as 4 halves (8
// bytes, widened where they are used), so that a step's rows stay in as few registers as possible.
template <typename T>
struct RawRow4;
template <>
struct RawRow4<float> {
    float4 v;
    __device__ __forceinline__ void load(const float* p) { v = *reinterpret_cast<const float4*>(p); }
    __device__ __forceinline__ void clear() { v = make_float4(0.0f, 0.0f, 0.0f, 0.0f); }
    __device__ __forceinline__ void get(float (&out)[4]) const { out[0] = v.x; out[1] = v.y; out[2] = v.z; out[3] = v.w; }
};
template <>
struct RawRow4<__half> {
    uint2 v;
    __device__ __forceinline__ void load(const __half* p) { v = *reinterpret_cast<const uint2*>(p); }
    __device__ __forceinline__ void clear() { v = make_uint2(0u, 0u); }
    __device__ __forceinline__ void get(float (&out)[4]) const {
        const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&v.x));
        const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&v.y));
        out[0] = a.x; out[1] = a.y; out[2] = b.x; out[3] = b.y;
    }
};

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

// Sums each of v[0..N-1] (N a power of two, at most 32) over the warp's lanes and returns the sum
// of v[lane / (32 / N)]. Each exchange halves the values a lane still holds: lanes with the
// exchange's bit set keep the upper half, their partners the lower half, and each adds what the
// other sends; N sums thus take N - 1 + log2(32 / N) shuffles instead of 5 N.
template <int N>
__device__ __forceinline__ float warp_sum_transposed(float (&v)[N], int lane) {
#pragma unroll
    for (int n = N / 2, off = 16; n >= 1; n /= 2, off /= 2) {
        const bool upper = lane & off;
#pragma unroll
        for (int i = 0; i < n; ++i) {
            const float send = upper ? v[i] : v[i + n];
            const float keep = upper ? v[i + n] : v[i];
            v[i] = keep + __shfl_xor_sync(0xffffffffu, send, off);
        }
    }
#pragma unroll
    for (int off = 16 / N; off > 0; off /= 2) v[0] += __shfl_xor_sync(0xffffffffu, v[0], off);
    return v[0];
}

// exp(m - M) as a weight for a partial result whose max is m; an empty partial (m = -inf) weighs 0.
__device__ __forceinline__ float rescale(float m, float M) { return m == -FLT_MAX ? 0.0f : expf(m - M); }

// Writes output value x at index i and, with q8 set (the output projection's input format Q8_0),
// its quantization as the activation preparation kernel would (activations.cu: the same
// operations), which saves that kernel's launch. A warp holds one 32-value block: the whole warp
// must call it with consecutive i inside one head (head_dim a multiple of 32 where q8 is set).
__device__ __forceinline__ void store_output(float x, size_t i, float* out, int8_t* q8, float2* q8_ds) {
    out[i] = x;
    if (!q8) return;
    const float amax = warp_max(fabsf(x));
    const float dq = amax / 127.0f;
    const float mul = dq != 0.0f ? 1.0f / dq : 0.0f;
    const int qv = int(rintf(x * mul));
    const int qsum = __reduce_add_sync(0xffffffffu, qv);
    q8[i] = int8_t(qv);
    if ((threadIdx.x & 31) == 0) q8_ds[i / 32] = make_float2(__half2float(__float2half_rn(dq)), float(qsum));
}

// Merges splits 0..n_active-1 of (head h, token t) (slots of n_splits per head and token) into
// the output: weights exp(m_i - M) / L computed once in shared memory, then warp w sums splits
// w, w + kWarps, ... (lane l: dimensions 4l.. as in the key loop, so each split's row is one
// coalesced load per warp and the warps' loads are in flight together), and the warps' sums are
// added through `red` ([kWarps][kMaxHeadDim] in shared memory). The partials are read through
// L2 (__ldcg): other blocks of the same launch wrote them.
template <int C>
__device__ __forceinline__ void combine_splits(const AttentionShape& s, int n_splits, int n_active,
                                               const float* partial_acc, const float* partial_ml,
                                               float (*red)[kMaxHeadDim], float* out, int8_t* q8, float2* q8_ds,
                                               int h, int t) {
    __shared__ float weight_s[kMaxSplits];
    const int hd = s.head_dim;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const size_t first = (size_t(t) * s.n_head + h) * n_splits;
    if (warp == 0) {
        float m[kMaxSplits / 32], l[kMaxSplits / 32];
        float M = -FLT_MAX;
#pragma unroll
        for (int j = 0; j < kMaxSplits / 32; ++j) {
            const int i = lane + 32 * j;
            m[j] = i < n_active ? __ldcg(partial_ml + 2 * (first + i)) : -FLT_MAX;
            l[j] = i < n_active ? __ldcg(partial_ml + 2 * (first + i) + 1) : 0.0f;
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
            if (i < n_active) weight_s[i] = rescale(m[j], M) / L;
        }
    }
    __syncthreads();
    float sum[C][4] = {};
#pragma unroll 4
    for (int i = warp; i < n_active; i += kWarps) {
        const float w = weight_s[i];
        const float* row = partial_acc + (first + i) * hd;
#pragma unroll
        for (int c = 0; c < C; ++c) {
            const int d = 4 * lane + 128 * c;
            if (d < hd) {
                const float4 v = __ldcg(reinterpret_cast<const float4*>(row + d));
                sum[c][0] += w * v.x; sum[c][1] += w * v.y; sum[c][2] += w * v.z; sum[c][3] += w * v.w;
            }
        }
    }
#pragma unroll
    for (int c = 0; c < C; ++c) {
        const int d = 4 * lane + 128 * c;
        if (d < hd) *reinterpret_cast<float4*>(&red[warp][d]) = make_float4(sum[c][0], sum[c][1], sum[c][2], sum[c][3]);
    }
    __syncthreads();
    const size_t o0 = (size_t(t) * s.n_head + h) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float x = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) x += red[w][d];
        store_output(x, o0 + d, out, q8, q8_ds);
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

// C: columns of 4 dimensions per lane (head_dim up to 128 C). A step holds kStep key and value
// rows in registers as loaded: 8 / C rows for an f32 cache, 16 / C for f16 (the same bytes in
// flight and registers, half the values each), so the f16 cache's half-size rows take half the
// round trips. H200 7B Q4_0, f16 cache: tg128 at depth 4096 343 -> 393 tokens/s (f32: 339),
// at depth 0 517 -> 530 (f32: 539); with 8 rows per step the f16 kernel was latency-bound.
template <typename T, int C>
__global__ void __launch_bounds__(32 * kWarps, 4)
    attention_split_kernel(const float* __restrict__ q, const T* __restrict__ k_cache, const T* __restrict__ v_cache,
                           AttentionShape s, const int32_t* __restrict__ positions, int n_splits, int split_keys,
                           float scale, float* partial_acc, float* partial_ml, int* split_counters, float* out,
                           int8_t* q8, float2* q8_ds, bool q8k) {
    constexpr int kStep = (sizeof(T) == 2 ? 16 : 8) / C;
    constexpr int kGroupLanes = 32 / kStep;  // lanes that end up holding one key's score
    wait_for_previous_kernel();
    const int h = blockIdx.x, t = blockIdx.y, split = blockIdx.z;
    const int hd = s.head_dim;
    const int kv_head = h / (s.n_head / s.n_head_kv);
    const int n_keys = positions[t] + 1;
    const int spread = (n_keys + n_splits - 1) / n_splits;
    const int per_split = max(split_keys, (spread + kSplitKeysUnit - 1) / kSplitKeysUnit * kSplitKeysUnit);
    const int n_active = (n_keys + per_split - 1) / per_split;
    if (split >= n_active) return;  // past the context: the whole block, before any barrier
    const int k_begin = split * per_split;
    const int k_end = min(n_keys, k_begin + per_split);

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const size_t kv_offset = size_t(kv_head) * s.n_ctx * hd;
    const T* K = k_cache + kv_offset;
    const T* V = v_cache + kv_offset;

    float qv[C][4];
    const float* qh = q + (size_t(t) * s.n_head + h) * hd;
#pragma unroll
    for (int c = 0; c < C; ++c) {
        const int d = 4 * lane + 128 * c;
        if (d < hd) {
            load4(qh + d, qv[c]);
#pragma unroll
            for (int i = 0; i < 4; ++i) qv[c][i] *= scale;
        } else {
#pragma unroll
            for (int i = 0; i < 4; ++i) qv[c][i] = 0.0f;
        }
    }

    float m = -FLT_MAX, l = 0.0f;
    float acc[C][4] = {};
    // Warp w takes steps w, w + kWarps, ... of the split's keys (a split of one step per warp,
    // the short contexts' case, is then a single round trip for the whole block).
    for (int base = k_begin + kStep * warp; base < k_end; base += kStep * kWarps) {
        RawRow4<T> kr[kStep][C], vr[kStep][C];
#pragma unroll
        for (int j = 0; j < kStep; ++j) {
            const bool key_in = base + j < k_end;
#pragma unroll
            for (int c = 0; c < C; ++c) {
                const int d = 4 * lane + 128 * c;
                if (key_in && d < hd) {
                    kr[j][c].load(K + size_t(base + j) * hd + d);
                    vr[j][c].load(V + size_t(base + j) * hd + d);
                } else {
                    kr[j][c].clear();
                    vr[j][c].clear();
                }
            }
        }
        float dot[kStep];
#pragma unroll
        for (int j = 0; j < kStep; ++j) {
            dot[j] = 0.0f;
#pragma unroll
            for (int c = 0; c < C; ++c) {
                float k4[4];
                kr[j][c].get(k4);
#pragma unroll
                for (int i = 0; i < 4; ++i) dot[j] += qv[c][i] * k4[i];
            }
        }
        const float lane_dot = warp_sum_transposed<kStep>(dot, lane);  // key base + lane / kGroupLanes
        const bool valid = base + lane / kGroupLanes < k_end;
        const float score = valid ? lane_dot : -FLT_MAX;
        // The lanes of a group hold the same score: reducing across the groups covers the step.
        float step_max = score, p_sum;
#pragma unroll
        for (int off = 16; off >= kGroupLanes; off /= 2)
            step_max = fmaxf(step_max, __shfl_xor_sync(0xffffffffu, step_max, off));
        const float m_new = fmaxf(m, step_max);  // key `base` is valid, so m_new is finite
        const float correction = rescale(m, m_new);
        const float p = valid ? expf(score - m_new) : 0.0f;
        p_sum = p;
#pragma unroll
        for (int off = 16; off >= kGroupLanes; off /= 2) p_sum += __shfl_xor_sync(0xffffffffu, p_sum, off);
        l = l * correction + p_sum;
#pragma unroll
        for (int c = 0; c < C; ++c)
#pragma unroll
            for (int i = 0; i < 4; ++i) acc[c][i] *= correction;
#pragma unroll
        for (int j = 0; j < kStep; ++j) {
            const float pj = __shfl_sync(0xffffffffu, p, j * kGroupLanes);
#pragma unroll
            for (int c = 0; c < C; ++c) {
                float v4[4];
                vr[j][c].get(v4);
#pragma unroll
                for (int i = 0; i < 4; ++i) acc[c][i] += pj * v4[i];
            }
        }
        m = m_new;
    }

    __shared__ float warp_m[kWarps], warp_l[kWarps];
    __shared__ __align__(16) float warp_acc[kWarps][kMaxHeadDim];
    if (lane == 0) {
        warp_m[warp] = m;
        warp_l[warp] = l;
    }
#pragma unroll
    for (int c = 0; c < C; ++c) {
        const int d = 4 * lane + 128 * c;
        if (d < hd)
            *reinterpret_cast<float4*>(&warp_acc[warp][d]) = make_float4(acc[c][0], acc[c][1], acc[c][2], acc[c][3]);
    }
    __syncthreads();

    float M = -FLT_MAX, L = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, warp_m[w]);
#pragma unroll
    for (int w = 0; w < kWarps; ++w) L += warp_l[w] * rescale(warp_m[w], M);
    const size_t head_row = size_t(t) * s.n_head + h;
    if (n_active == 1 && !q8k) {  // the whole context in this block: no partials, no merge
        for (int d = threadIdx.x; d < hd; d += 32 * kWarps) {
            float sum = 0.0f;
#pragma unroll
            for (int w = 0; w < kWarps; ++w) sum += warp_acc[w][d] * rescale(warp_m[w], M);
            store_output(sum / L, head_row * hd + d, out, q8, q8_ds);
        }
        return;
    }
    const size_t slot = head_row * n_splits + split;
    for (int d = threadIdx.x; d < hd; d += 32 * kWarps) {
        float sum = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) sum += warp_acc[w][d] * rescale(warp_m[w], M);
        partial_acc[slot * hd + d] = sum;
    }
    if (threadIdx.x == 0) {
        partial_ml[2 * slot] = M;
        partial_ml[2 * slot + 1] = L;
    }
    // The last of the blocks of a (head group, token) to finish merges all their splits and
    // resets the group's counter for the next launch. A group is one head, or with q8k the heads
    // of one Q8_K block of 256 outputs, which it then also quantizes.
    const int group = q8k ? 256 / hd : 1;
    const int h0 = h - h % group;
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        int* counter = split_counters + size_t(t) * s.n_head + h0;
        last = atomicAdd(counter, 1) == n_active * group - 1;
        if (last) *counter = 0;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    if (!q8k) {
        combine_splits<C>(s, n_splits, n_active, partial_acc, partial_ml, warp_acc, out, q8, q8_ds, h, t);
        return;
    }
    for (int hh = h0; hh < h0 + group; ++hh) {
        combine_splits<C>(s, n_splits, n_active, partial_acc, partial_ml, warp_acc, out, nullptr, nullptr, hh, t);
        __syncthreads();  // weight_s and warp_acc are reused by the next head, and warp 0 reads all outputs below
    }
    const size_t o0 = (size_t(t) * s.n_head + h0) * hd;
    if (threadIdx.x < 32) quantize_q8k_256(out + o0, q8 + o0, q8_ds + o0 / 32, threadIdx.x);
}

// Prefill on the SIMT cores, for the head_dims that the tensor-core kernel
// (attention_prefill_mma.cu) does not take and with APR_CUDA_TC_ATTENTION=0: a block per (head,
// tile of kPrefillQueries consecutive tokens); each warp owns
// kQueriesPerWarp queries. Tiles of 32 keys and their values are loaded once into shared memory
// (coalesced) and used by all the block's queries, instead of every query reading the cache on
// its own; per query the same online softmax as the split kernel's, lane = key for the scores and lane = output
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

int attention_resident_blocks(bool kv_f16, int head_dim) {
    const bool wide = head_dim > 128;
    const void* kernel = kv_f16 ? (wide ? reinterpret_cast<const void*>(attention_split_kernel<__half, 2>)
                                        : reinterpret_cast<const void*>(attention_split_kernel<__half, 1>))
                                : (wide ? reinterpret_cast<const void*>(attention_split_kernel<float, 2>)
                                        : reinterpret_cast<const void*>(attention_split_kernel<float, 1>));
    int blocks = 0;
    cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, 32 * kWarps, 0),
               "cudaOccupancyMaxActiveBlocksPerMultiprocessor (attention)");
    return std::max(1, blocks);
}

void attention(const float* q, const KvLayer& kv, const AttentionShape& s, const int32_t* positions, int n_tokens,
               int n_splits, int split_keys, float* partial_acc, float* partial_ml, int* split_counters, float* out,
               ActFormat out_format, int8_t* out_q, float2* out_ds, bool tensor_cores, cudaStream_t stream) {
    if (out_q && !attention_quantizes(s, n_tokens, out_format))
        throw BackendError(APR_ERR_INTERNAL, "attention: a quantized output asked for where the kernel cannot give it");
    const bool q8k = out_q && out_format == ActFormat::Q8_K;
    int8_t* out_q8 = out_q;
    float2* out_q8_ds = out_ds;
    if (n_splits < 1 || n_splits > kMaxSplits)
        throw BackendError(APR_ERR_INTERNAL, "attention: " + std::to_string(n_splits) + " key splits (1.." +
                                                 std::to_string(kMaxSplits) + " supported)");
    if (split_keys < kSplitKeysUnit || split_keys % kSplitKeysUnit != 0)
        throw BackendError(APR_ERR_INTERNAL, "attention: " + std::to_string(split_keys) +
                                                 " keys per split (a multiple of " + std::to_string(kSplitKeysUnit) +
                                                 " wanted)");
    if (s.head_dim % 4 != 0 || s.head_dim > kMaxHeadDim)
        throw BackendError(APR_ERR_INTERNAL, "attention: head_dim " + std::to_string(s.head_dim) +
                                                 " (a multiple of 4 up to " + std::to_string(kMaxHeadDim) +
                                                 " supported)");
    const float scale = 1.0f / sqrtf(float(s.head_dim));
    if (n_tokens >= kPrefillQueries) {
        if (tensor_cores && attention_prefill_mma(q, kv, s, positions, n_tokens, out, stream)) return;
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
    // The kernel's variants: f32 or f16 cache, head_dim up to 128 or up to 256.
    auto launch = [&](auto kernel, auto cache_type) {
        using T = decltype(cache_type);
        launch_kernel("attention kernel", kernel, grid, 32 * kWarps, 0, stream, q, static_cast<const T*>(kv.k),
                      static_cast<const T*>(kv.v), s, positions, n_splits, split_keys, scale, partial_acc,
                      partial_ml, split_counters, out, out_q8, out_q8_ds, q8k);
    };
    const bool wide = s.head_dim > 128;
    if (kv.f16 && wide)
        launch(attention_split_kernel<__half, 2>, __half{});
    else if (kv.f16)
        launch(attention_split_kernel<__half, 1>, __half{});
    else if (wide)
        launch(attention_split_kernel<float, 2>, float{});
    else
        launch(attention_split_kernel<float, 1>, float{});
    check_launch("attention kernel");
}

}  // namespace apr_cuda
