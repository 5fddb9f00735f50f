// Prefill attention on tensor cores, flash-attention style. A block of 4 warps takes one head and
// a tile of kQueries (64) consecutive tokens, 16 query rows per warp, and walks the keys
// 0..max(positions) of its tile kKeys (64) at a time:
//   S = Q K^T    mma.sync m16n8k16, f16 inputs, f32 sums (Q pre-scaled by 1/sqrt(head_dim) * log2 e,
//                so that the softmax takes exp2);
//   online softmax of S in registers, in f32 (running max m and partial sum l per row; the
//                accumulator fragment of S is the A fragment of the next product once rounded to f16);
//   O += P V     mma.sync m16n8k16, f32 accumulators.
// Keys and values are read from the f32 or f16 cache, rounded to f16 (as llama.cpp's flash
// attention does) and staged in shared memory, one tile each. The next tile's keys are loaded into
// registers while the warps run the softmax and P V of the current one, and its values while they
// run the next Q K^T, so the cache's latency is hidden behind the tensor-core work. The causal limit
// is key <= positions[t] per query row, as in the SIMT kernel (positions need not start at 0).
// H200, 7B Q4_0 (head_dim 128, f32 cache): 1.16 ms of attention per 512-token pass against 13.1 ms
// for the SIMT kernel; pp512 11,226 against 8,884 tokens/s, pp2048 10,864 against 5,790.
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "backend_error.hpp"
#include "kernels.hpp"
#include "launch.cuh"
#include "mma_primitives.cuh"

namespace apr_cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kQueries = 16 * kWarps;  // query rows per block
constexpr int kKeys = 64;              // keys per tile
constexpr int kThreads = 32 * kWarps;
constexpr float kLog2e = 1.4426950408889634f;

// A tile row of D halves plus 8 of padding: consecutive rows start 4 banks apart, so the 8 row
// addresses of an ldmatrix phase hit distinct banks.
template <int D>
constexpr int kRowHalves = D + 8;

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
}

// 8 consecutive cache elements, as loaded (f32: two float4; f16: one uint4), and rounded to f16.
template <typename T>
struct Chunk;
template <>
struct Chunk<float> {
    float4 a, b;
    __device__ __forceinline__ void load(const float* p) {
        a = *reinterpret_cast<const float4*>(p);
        b = *reinterpret_cast<const float4*>(p + 4);
    }
    __device__ __forceinline__ void zero() { a = b = make_float4(0.0f, 0.0f, 0.0f, 0.0f); }
    __device__ __forceinline__ uint4 halves() const {
        return make_uint4(pack_half2(a.x, a.y), pack_half2(a.z, a.w), pack_half2(b.x, b.y), pack_half2(b.z, b.w));
    }
};
template <>
struct Chunk<__half> {
    uint4 v;
    __device__ __forceinline__ void load(const __half* p) { v = *reinterpret_cast<const uint4*>(p); }
    __device__ __forceinline__ void zero() { v = make_uint4(0u, 0u, 0u, 0u); }
    __device__ __forceinline__ uint4 halves() const { return v; }
};

// One tile of kKeys cache rows (D elements each) in flight in registers. A row is D / 8 chunks of
// 8 elements; thread tid takes chunk tid % (D / 8) of rows tid / (D / 8) + kRowsPerPass * i, so a
// warp reads contiguous bytes and writes 16-byte pieces of consecutive rows' halves, and a thread's
// addresses are one pointer plus constants.
template <typename T, int D>
struct TileLoad {
    static constexpr int kChunksPerRow = D / 8;
    static_assert(kThreads % kChunksPerRow == 0, "whole rows per pass of the block");
    static constexpr int kRowsPerPass = kThreads / kChunksPerRow;
    static constexpr int kPerThread = kKeys / kRowsPerPass;
    Chunk<T> c[kPerThread];

    __device__ __forceinline__ static int first_row() { return threadIdx.x / kChunksPerRow; }
    __device__ __forceinline__ static int column() { return threadIdx.x % kChunksPerRow * 8; }

    // Rows key0.. of `src` ([n_ctx][D]); rows at or past n_keys read as zeros (their values must not
    // be garbage: a zero weight times NaN would still be NaN).
    __device__ __forceinline__ void load(const T* src, int key0, int n_keys) {
        const int row = key0 + first_row();
        const T* p = src + size_t(row) * D + column();
#pragma unroll
        for (int i = 0; i < kPerThread; ++i) {
            if (row + kRowsPerPass * i < n_keys)
                c[i].load(p + kRowsPerPass * i * D);
            else
                c[i].zero();
        }
    }
    __device__ __forceinline__ void store(__half* tile) const {
        __half* p = tile + first_row() * kRowHalves<D> + column();
#pragma unroll
        for (int i = 0; i < kPerThread; ++i)
            *reinterpret_cast<uint4*>(p + kRowsPerPass * i * kRowHalves<D>) = c[i].halves();
    }
};

template <typename T, int D>
__global__ void __launch_bounds__(kThreads, 2)
    attention_prefill_mma_kernel(const float* __restrict__ q, const T* __restrict__ k_cache,
                                 const T* __restrict__ v_cache, AttentionShape s, const int32_t* __restrict__ positions,
                                 int n_tokens, float q_scale, float* __restrict__ out) {
    constexpr int RH = kRowHalves<D>;
    constexpr int kDimSteps = D / 16;  // k-steps of Q K^T
    constexpr int kKeyTiles = kKeys / 8;  // n-tiles of S
    constexpr int kDimTiles = D / 8;  // n-tiles of O
    extern __shared__ __align__(16) __half smem[];
    __half* q_s = smem;                   // [kQueries][RH]: scaled queries
    __half* k_s = q_s + kQueries * RH;    // [kKeys][RH]
    __half* v_s = k_s + kKeys * RH;       // [kKeys][RH]
    __shared__ int n_keys_s;

    wait_for_previous_kernel();
    const int h = blockIdx.x;
    // The longest tiles (latest tokens, most keys) first: they set the kernel's tail.
    const int t0 = (gridDim.y - 1 - blockIdx.y) * kQueries;
    const int kv_head = h / (s.n_head / s.n_head_kv);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t4 = lane & 3;
    const T* K = k_cache + size_t(kv_head) * s.n_ctx * D;
    const T* V = v_cache + size_t(kv_head) * s.n_ctx * D;

    // This thread's two query rows (g and g + 8 of the warp's 16) and their causal limits; rows past
    // the last token have none (-1: every key masked, nothing written).
    const int row0 = warp * 16 + g;
    int pos[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int t = t0 + row0 + 8 * r;
        pos[r] = t < n_tokens ? positions[t] : -1;
    }
    if (threadIdx.x == 0) n_keys_s = 0;
    // Queries, scaled and rounded to f16. Their A fragments are read from shared memory at each
    // use: in registers they would take 2 * D / 8 more per thread, which the f32 cache's tile in
    // flight (D / 2) does not leave room for.
    constexpr int kQChunksPerRow = D / 8;
    for (int chunk = threadIdx.x; chunk < kQueries * kQChunksPerRow; chunk += kThreads) {
        const int row = chunk / kQChunksPerRow, col = chunk % kQChunksPerRow * 8;
        const int t = t0 + row;
        Chunk<float> c;
        if (t < n_tokens) {
            c.load(q + (size_t(t) * s.n_head + h) * D + col);
            c.a.x *= q_scale; c.a.y *= q_scale; c.a.z *= q_scale; c.a.w *= q_scale;
            c.b.x *= q_scale; c.b.y *= q_scale; c.b.z *= q_scale; c.b.w *= q_scale;
        } else {
            c.zero();
        }
        *reinterpret_cast<uint4*>(q_s + row * RH + col) = c.halves();
    }
    __syncthreads();  // n_keys_s reset
    atomicMax(&n_keys_s, max(pos[0], pos[1]) + 1);
    __syncthreads();  // n_keys_s complete
    const int n_keys = n_keys_s;
    const int n_tiles = (n_keys + kKeys - 1) / kKeys;
    const int warp_last = __reduce_max_sync(0xffffffffu, max(pos[0], pos[1]));  // the warp's last key
    const int my_first = min(pos[0] < 0 ? INT32_MAX : pos[0], pos[1] < 0 ? INT32_MAX : pos[1]);

    float o[kDimTiles][4];
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // l: this thread's columns only

    // B fragments of 16 keys at once. Keys: matrices (keys 0-7, dims k0..), (keys 0-7, k0 + 8..),
    // (keys 8-15, k0..), (keys 8-15, k0 + 8..). Values, by transposed loads: (keys 0-7, dims n0..),
    // (keys 8-15, n0..), (keys 0-7, n0 + 8..), (keys 8-15, n0 + 8..).
    // A fragments of the warp's 16 query rows: lanes 0-15 address rows 0-15 at column k0, lanes
    // 16-31 the same rows at k0 + 8 (registers a0..a3 of m16n8k16).
    const uint32_t q_lane = smem_address(q_s + (warp * 16 + (lane & 15)) * RH + (lane >> 4) * 8);
    const uint32_t k_lane = smem_address(k_s + ((lane & 7) + (lane >> 4) * 8) * RH + ((lane >> 3) & 1) * 8);
    const uint32_t v_lane = smem_address(v_s + ((lane & 7) + ((lane >> 3) & 1) * 8) * RH + (lane >> 4) * 8);

    TileLoad<T, D> kr, vr;
    kr.load(K, 0, n_keys);
    vr.load(V, 0, n_keys);
    kr.store(k_s);
    __syncthreads();  // queries and the first keys staged

    for (int tile = 0; tile < n_tiles; ++tile) {
        const int kb = tile * kKeys;
        const bool active = kb <= warp_last;  // else every key of the tile is in the warp's future
        float sc[kKeyTiles][4];
        if (active) {
#pragma unroll
            for (int j = 0; j < kKeyTiles; ++j) sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < kDimSteps; ++kk) {
                uint32_t a[4];
                ldmatrix_x4(a, q_lane + 2 * 16 * kk);
#pragma unroll
                for (int jj = 0; jj < kKeyTiles / 2; ++jj) {
                    uint32_t b[4];
                    ldmatrix_x4(b, k_lane + 2 * (16 * jj * RH + 16 * kk));
                    mma_f16(sc[2 * jj], a, b[0], b[1]);
                    mma_f16(sc[2 * jj + 1], a, b[2], b[3]);
                }
            }
        }
        // v_s is free (the previous tile's P V ended before the last barrier).
        vr.store(v_s);
        __syncthreads();  // every warp's Q K^T is done with k_s; v_s holds this tile's values
        if (tile + 1 < n_tiles) kr.load(K, kb + kKeys, n_keys);
        if (active) {
            // Causal mask where the tile reaches past this thread's earlier row.
            if (kb + kKeys - 1 > my_first) {
#pragma unroll
                for (int j = 0; j < kKeyTiles; ++j)
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int key = kb + 8 * j + 2 * t4 + (e & 1);
                        if (key > pos[e >> 1]) sc[j][e] = -INFINITY;
                    }
            }
            float alpha[2];
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                float mx = m[r];
#pragma unroll
                for (int j = 0; j < kKeyTiles; ++j) mx = fmaxf(mx, fmaxf(sc[j][2 * r], sc[j][2 * r + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                // A row with no key yet keeps m = -inf; exp2 against 0 then gives it zero weights.
                const float base = mx == -INFINITY ? 0.0f : mx;
                alpha[r] = exp2f(m[r] - base);
                m[r] = mx;
                float sum = 0.0f;
#pragma unroll
                for (int j = 0; j < kKeyTiles; ++j) {
                    sc[j][2 * r] = exp2f(sc[j][2 * r] - base);
                    sc[j][2 * r + 1] = exp2f(sc[j][2 * r + 1] - base);
                    sum += sc[j][2 * r] + sc[j][2 * r + 1];
                }
                l[r] = l[r] * alpha[r] + sum;
            }
#pragma unroll
            for (int j = 0; j < kDimTiles; ++j) {
                o[j][0] *= alpha[0];
                o[j][1] *= alpha[0];
                o[j][2] *= alpha[1];
                o[j][3] *= alpha[1];
            }
            // P's A fragment for keys 16kk..16kk+15 is S's n-tiles 2kk and 2kk + 1.
#pragma unroll
            for (int kk = 0; kk < kKeys / 16; ++kk) {
                const uint32_t a[4] = {pack_half2(sc[2 * kk][0], sc[2 * kk][1]),
                                       pack_half2(sc[2 * kk][2], sc[2 * kk][3]),
                                       pack_half2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                                       pack_half2(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
                for (int jj = 0; jj < kDimTiles / 2; ++jj) {
                    uint32_t b[4];
                    ldmatrix_x4_trans(b, v_lane + 2 * (16 * kk * RH + 16 * jj));
                    mma_f16(o[2 * jj], a, b[0], b[1]);
                    mma_f16(o[2 * jj + 1], a, b[2], b[3]);
                }
            }
        }
        if (tile + 1 < n_tiles) {
            kr.store(k_s);  // k_s is free since the barrier above
            vr.load(V, kb + kKeys, n_keys);
        }
        __syncthreads();  // k_s holds the next keys; every warp's P V is done with v_s
    }

#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int t = t0 + row0 + 8 * r;
        if (t >= n_tokens) continue;
        const float inv = 1.0f / l[r];  // key 0 is in every row's range: l > 0
        float* dst = out + (size_t(t) * s.n_head + h) * D + 2 * t4;
#pragma unroll
        for (int j = 0; j < kDimTiles; ++j)
            *reinterpret_cast<float2*>(dst + 8 * j) = make_float2(o[j][2 * r] * inv, o[j][2 * r + 1] * inv);
    }
}

template <typename T, int D>
void launch_for(const float* q, const void* k, const void* v, const AttentionShape& s, const int32_t* positions,
                int n_tokens, float* out, cudaStream_t stream) {
    const size_t smem = size_t(kQueries + 2 * kKeys) * kRowHalves<D> * sizeof(__half);
    static const bool opted_in = [&] {  // beyond the 48 KiB a block gets without asking, once
        cuda_check(cudaFuncSetAttribute(attention_prefill_mma_kernel<T, D>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
                   "cudaFuncSetAttribute (prefill attention, tensor cores)");
        return true;
    }();
    (void)opted_in;
    const dim3 grid(s.n_head, (n_tokens + kQueries - 1) / kQueries);
    const float q_scale = kLog2e / sqrtf(float(D));
    launch_kernel("prefill attention kernel (tensor cores)", attention_prefill_mma_kernel<T, D>, grid, kThreads, smem,
                  stream, q, static_cast<const T*>(k), static_cast<const T*>(v), s, positions, n_tokens, q_scale, out);
}

template <int D>
void launch_for_dim(const float* q, const KvLayer& kv, const AttentionShape& s, const int32_t* positions,
                    int n_tokens, float* out, cudaStream_t stream) {
    if (kv.f16)
        launch_for<__half, D>(q, kv.k, kv.v, s, positions, n_tokens, out, stream);
    else
        launch_for<float, D>(q, kv.k, kv.v, s, positions, n_tokens, out, stream);
}

}  // namespace

bool attention_prefill_mma(const float* q, const KvLayer& kv, const AttentionShape& s, const int32_t* positions,
                           int n_tokens, float* out, cudaStream_t stream) {
    switch (s.head_dim) {
        case 64: launch_for_dim<64>(q, kv, s, positions, n_tokens, out, stream); break;
        case 128: launch_for_dim<128>(q, kv, s, positions, n_tokens, out, stream); break;
        default: return false;
    }
    return true;
}

}  // namespace apr_cuda
