// Prefill mat-mat for quantized weights at large token counts, the default of matmul_int8_pipelined
// (APR_CUDA_MM_V2=0 keeps that file's kernel): the same 128 x 128 block tiles, 8-chunk steps,
// cp.async copies and int8 mma.sync, arranged for more warps in flight and less work per MMA.
//
// Why: matmul_int8_pipelined_kernel runs 8 warps per SM (255 registers), and its two barriers per
// step leave the tensor cores idle while the block decodes. Here
// - 16 warps of 32 x 32 (warp tile 2 x 4 m16n8k32 per chunk), at most 128 registers each, in one
//   block per SM: twice the warps to hide the MMA and shared-memory latencies;
// - the decoded int8 weight tile is double buffered: in step s the threads decode step s + 1's
//   raw weights (copied one step earlier) while the MMAs read step s's tile, so one barrier per
//   step separates the stages and a warp's decode overlaps other warps' MMAs;
// - two FMAs per accumulator element and chunk instead of a subtraction, a multiplication and an
//   FMA: u = fma(w_scale, biased, -w_scale * bias) is w_scale * dot rounded once (w_scale * bias
//   is exact: the weight scales have at most 17 significant bits, an fp16 times a 6-bit integer
//   for the K-quants, and bias = 3 * 2^22), then acc = fma(u, x_scale, acc). The chunk dots stay
//   exact int32; the one rounding moves from w_scale * x_scale to w_scale * dot.
// Pipeline of step s (after the one barrier): copy step s + 2's raw weights and step s + 1's
// activations; decode step s + 1's raw weights into the other int8 tile; MMAs on step s.
// The per-step copies and the decode are kept to few integer instructions (32-bit index math,
// fixed per-thread layouts): in the first version they were 40% of the kernel's instructions.
//
// Needs the shared memory of two raw weight stages, so formats with more than 236 raw bytes per
// row and step (Q8_0) stay on the older kernel. Q5_K once looked less accurate here (its 200-token
// prefill test at cosine 0.99983 against 0.9999990), which did not reproduce on the H200 with the
// tensor-core attention in main: worst cosine 0.99975 on the older kernel, 0.99976 here with the
// per-chunk min, 0.99972 / 0.99971 with the folded min / integer steps (Q4_K alike: 0.99973 /
// 0.99973 / 0.99969). H200 7B Q5_K pp512, two interleaved pairs: 10,065 / 10,116 tokens/s on the
// older kernel, 11,981 / 11,975 here, so Q5_K runs here too (APR_CUDA_MM_Q5K=0: the older one).
//
// H200, 7B pp512 (tokens/s, APR_CUDA_MM_V2=0 -> default): Q4_0 8,891 -> 10,430, Q4_K 8,058 ->
// 9,232; per 512-token pass gate/up 18.1 -> 14.5 ms, QKV 10.1 -> 8.9, down 8.8 -> 7.0, wo 3.8 ->
// 2.9 (variant 1). ncu, 11008 x 4096 x 512 Q4_0 (variant 1): 226 us, 4 warps per scheduler,
// 1.47 eligible, stalls per issue: not selected 1.55, wait 0.84, math pipe 0.75, short
// scoreboard 0.72, dispatch 0.70, barrier 0.60, long scoreboard 0.45.
// The min term (kFoldMin): formats with a per-chunk min (x = a * q + m: Q4_1, Q5_1, the K-quants)
// add m * x_scale * sum(x_q) per chunk, one more FMA per accumulator element and chunk (plus its
// scale loads and products) in the version above: the Q4_K kernel ran 0.85 of Q4_0's speed.
// Summed over a step it is an 8-deep product of the rows' mins with the tokens' chunk sums, so
// here one m16n8k8 fp16 MMA per warp tile and step adds it straight into the fp32 accumulators
// (the D layout of m16n8k8 is the int8 MMA's): the decode stores each min as fp16 times 2^4,
// the MMA loop turns each step's activation sums into fp16 times 2^-4 (chunk sums of activations
// up to 32k, mins up to 4k stay inside fp16 range; a min is never smaller than its fp16 dmin).
// Both roundings are relative 2^-12 on a term that the int8 quantization of the activations
// already rounds far more coarsely. APR_CUDA_MM_FOLD_MIN=0
// keeps the per-chunk FMA.
//
// Integer steps (kIntStep, Q4_K and Q5_K): their activations are Q8_K, one scale per 256 values,
// and a chunk's weight scale is the super-block's fp16 d times a 6-bit integer sc, so a step (one
// super-block) sums S = sum_c sc_c * dot_c exactly in int32 (one IMAD per accumulator element and
// chunk instead of two FMAs, |S| < 8 * 63 * 32 * 31 * 127 < 2^31) and adds d * x_scale * S to the
// fp32 accumulator once per step. APR_CUDA_MM_INT_STEP=0 keeps the float steps.
// H200, 7B pp512, one run (tokens/s): Q4_0 13,832 / 13,846 (unaffected); Q4_K per-chunk min
// (APR_CUDA_MM_FOLD_MIN=0) 11,820, folded min 12,110, folded min + integer steps (default)
// 13,132 = 0.95 of Q4_0, integer steps with the decode in one piece (APR_CUDA_MM_INT_STEP=2)
// 12,767. The 200-token prefill test's worst cosine for Q4_K moved 0.99973 -> 0.99969 (the
// reference rounds differently; the tolerance is 0.999). Integer steps spill 12 bytes (Q4_Kx8).
#include <cstdlib>

#include "backend_error.hpp"
#include "mma_primitives.cuh"
#include "kernels.hpp"
#include "launch.cuh"
#include "matmul_int8_overlapped.hpp"
#include "mma_tile_store.cuh"
#include "prefill_tile_staging.cuh"
#include "weight_formats.cuh"

namespace apr_cuda {
namespace {

using namespace prefill_tile;
constexpr int kThreads = 512;
constexpr size_t kMaxSharedBytes = 227 * 1024;  // opt-in limit of one block on sm_90

// The decode's thread layout (a warp per 32 rows of one chunk, two rounds) is written for these.
static_assert(kThreads == 512 && kRowsPerBlock == 128 && kStepChunks == 8, "decode layout");

template <class F>
constexpr size_t shared_bytes() {
    // With kFoldMin the mins take half of their part (fp16); the size is the same either way.
    return size_t(2) * kRowsPerBlock * kStepRawBytes<F> +            // raw weights, two stages
           size_t(2) * kTokensPerBlock * kPitch +                       // activations, two stages
           size_t(2) * kStepChunks * kTokensPerBlock * sizeof(float2) + // activation scales, two stages
           size_t(2) * kRowsPerBlock * kPitch +                         // decoded weights, two stages
           size_t(2) * 2 * kStepChunks * kRowsPerBlock * sizeof(float); // weight scales and mins, two stages
}

template <class F>
constexpr bool fits() {
    return !F::kTwoScales && kStepRawBytes<F> % 16 == 0 && shared_bytes<F>() <= kMaxSharedBytes;
}

// APR_CUDA_MM_Q5K=0 keeps Q5_K on the older kernel (see the notes at the top).
template <class F>
bool admitted() {
    if constexpr (F::type != APR_TYPE_Q5_K) return true;
    static const bool q5k = [] {
        const char* v = std::getenv("APR_CUDA_MM_Q5K");
        return !(v && *v == '0');
    }();
    return q5k;
}

constexpr float kMinScale = 16.0f;   // fp16 mins are stored times this, activation sums divided by it

// D += A (16 x 8, fp16, row) * B (8 x 8, fp16, col) in fp32; thread (g, t4) holds A's rows g and
// g + 8 at columns 2 t4, 2 t4 + 1 (a[0], a[1]), B's column g at rows 2 t4, 2 t4 + 1, and D as the
// int8 MMA does.
__device__ __forceinline__ void mma_f16_k8(float (&d)[4], const uint32_t (&a)[2], uint32_t b) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(b));
}

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
}

// Where row r's weight scale (and min) goes among a chunk's 128: the rows g, g + 8, g + 16,
// g + 24 of each 32 (the rows of an MMA thread, g = lane / 4) next to each other.
__device__ __forceinline__ int scale_slot(int r) { return (r & ~31) | (r & 7) << 2 | (r >> 3 & 3); }

__device__ __forceinline__ float4 load_shared_f4(const void* p) {
    float4 v;
    asm volatile("ld.shared.v4.f32 {%0,%1,%2,%3}, [%4];\n"
                 : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
                 : "r"(smem_address(p)));
    return v;
}

// kUnroll: chunks per unrolled MMA loop iteration; kSplitDecode: see the MMA loop.
// Formats with integer chunk scales under one super-block scale (super_d, chunk_sc), see the top.
template <class F>
constexpr bool has_int_scales() {
    return F::type == kTypeQ4_Kx8 || F::type == APR_TYPE_Q4_K || F::type == APR_TYPE_Q5_K;
}

template <class F, int kUnroll, bool kSplitDecode, bool kFoldMin, bool kIntStep = false>
__global__ void __launch_bounds__(kThreads, 1)
    matmul_int8_overlapped_kernel(const uint8_t* __restrict__ W, size_t row_bytes, int rows, int n_chunks,
                                  const int8_t* __restrict__ xq, const float2* __restrict__ xds, int n_tokens,
                                  float* y, int ldy, const float* __restrict__ bias, const float* residual, int ldr) {
    constexpr int kRaw = kStepRawBytes<F>;
    extern __shared__ __align__(16) uint8_t smem[];
    uint8_t* raw_s = smem;                                                        // [2][rows][kRaw]
    uint8_t* x_s = raw_s + 2 * kRowsPerBlock * kRaw;                              // [2][tokens][kPitch]
    float2* ds_s = reinterpret_cast<float2*>(x_s + 2 * kTokensPerBlock * kPitch);  // [2][chunk][tokens]
    uint8_t* w_s = reinterpret_cast<uint8_t*>(ds_s + 2 * kStepChunks * kTokensPerBlock);  // [2][rows][kPitch]
    float* scale_s = reinterpret_cast<float*>(w_s + 2 * kRowsPerBlock * kPitch);      // [2][chunk][rows]
    float* min_s = scale_s + 2 * kStepChunks * kRowsPerBlock;                          // [2][chunk][rows]
    __half* min_h = reinterpret_cast<__half*>(min_s);  // kFoldMin: [2][rows][chunk], fp16 * kMinScale
    // kIntStep: scale_s holds the integer sc (int bits), and the rows' super-block d follow the
    // fp16 mins, [2][rows] at scale_slot order.
    float* superd_s = min_s + kStepChunks * kRowsPerBlock;
    static_assert(!kIntStep || (kFoldMin && kStepChunks == F::kBlockChunks), "a step is one super-block");

    wait_for_previous_kernel();
    const int tid = threadIdx.x;
    const int lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t4 = lane & 3;
    const int warp_m = (warp & 3) * 32, warp_n = (warp >> 2) * 32;
    // Token tiles vary fastest: the blocks that share a weight tile run together and read it
    // from DRAM once.
    const int n0 = blockIdx.x * kTokensPerBlock, m0 = blockIdx.y * kRowsPerBlock;
    const int n_steps = (n_chunks + kStepChunks - 1) / kStepChunks;

    // Raw weights of `step`: 16-byte pieces, row-major, in 32-bit index math (a row of a weight
    // matrix is far below 2 GiB); rows past the end and bytes past a row's end read as zeros.
    const int row_bytes_i = int(row_bytes);
    auto load_raw = [&](int step, int buf) {
        constexpr int kPieces = kRaw / 16, kCopies = kRowsPerBlock * kPieces;
        uint8_t* raw = raw_s + buf * kRowsPerBlock * kRaw;
#pragma unroll
        for (int k = 0; k < (kCopies + kThreads - 1) / kThreads; ++k) {
            const int idx = tid + kThreads * k;
            if (kCopies % kThreads != 0 && idx >= kCopies) break;
            const int r = idx / kPieces, p = idx - r * kPieces;
            const int off = step * kRaw + 16 * p;
            const int left = row_bytes_i - off;
            const bool ok = m0 + r < rows && left > 0;
            copy16_async(raw + r * kRaw + 16 * p, ok ? W + size_t(m0 + r) * row_bytes + off : W,
                         ok ? (left < 16 ? left : 16) : 0);
        }
    };
    auto load_x = [&](int step, int buf) {
        copy_activation_step<kTokensPerBlock, kThreads, kPitch>(x_s + buf * kTokensPerBlock * kPitch,
                                                        ds_s + buf * kStepChunks * kTokensPerBlock, xq, xds,
                                                        n0, n_tokens, step * kStepChunks, n_chunks, tid);
    };
    // Raw weights of `step` (landed in raw buffer step & 1) -> int8 tile and scales of buffer step & 1.
    // Round `round` (0 or 1: rows 64 * round + 0..63) of that decode.
    auto decode_round = [&](int step, int round) {
        const int buf = step & 1;
        const uint8_t* raw = raw_s + buf * kRowsPerBlock * kRaw;
        uint8_t* wt = w_s + buf * kRowsPerBlock * kPitch;
        float* sc = scale_s + buf * kStepChunks * kRowsPerBlock;
        float* mn = min_s + buf * kStepChunks * kRowsPerBlock;
        __half* mh = min_h + buf * kRowsPerBlock * kStepChunks;
        {
            // A warp takes 32 neighbouring rows of one chunk (the same chunk in both rounds): its
            // stores of the int8 rows (272-byte pitch) and of the scales hit distinct banks.
            const int j = (tid >> 5) & 7, r = (tid & 31) + 32 * ((tid >> 8) + 2 * round);
            const bool valid = m0 + r < rows && step * kStepChunks + j < n_chunks;
            const uint8_t* block = raw + r * kRaw + (j / F::kBlockChunks) * F::kBlockBytes;
            const QuantChunk w = decode_chunk_int8<F>(block, j % F::kBlockChunks, valid, wt + r * kPitch + 32 * j);
            int sc_int = 0;
            float super_d = 0.0f;
            if constexpr (kIntStep) {
                if (valid) {
                    sc_int = F::chunk_sc(block, j);
                    super_d = F::super_d(block);
                }
            }
            if constexpr (kIntStep) {
                sc[j * kRowsPerBlock + scale_slot(r)] = __int_as_float(sc_int);
                if (j == 0) superd_s[buf * kRowsPerBlock + scale_slot(r)] = super_d;
            } else {
                sc[j * kRowsPerBlock + scale_slot(r)] = w.a0;
            }
            if constexpr (kFoldMin)
                mh[r * kStepChunks + j] = __float2half_rn(w.m * kMinScale);
            else if constexpr (F::kHasMin)
                mn[j * kRowsPerBlock + scale_slot(r)] = w.m;
        }
    };

    float acc[2][4][4] = {};

    // Prologue: step 0's weights and activations and step 1's weights in flight, step 0 decoded.
    load_raw(0, 0);
    load_x(0, 0);
    if (n_steps > 1) load_raw(1, 1);
    commit_copies();
    wait_copies();
    __syncthreads();
    decode_round(0, 0);
    decode_round(0, 1);

    for (int step = 0; step < n_steps; ++step) {
        const int buf = step & 1;
        wait_copies();
        // Everyone's copies issued last step have landed, the tile of this step is decoded, and
        // everyone is done with the buffers that the copies and the decode below overwrite (raw
        // stage `buf`, decoded last step; activation and tile stage buf ^ 1, read last step).
        __syncthreads();
        if (step + 2 < n_steps) load_raw(step + 2, buf);
        if (step + 1 < n_steps) load_x(step + 1, buf ^ 1);
        commit_copies();
        const bool decode_next = step + 1 < n_steps;
        if (decode_next) decode_round(step + 1, 0);
        if (!kSplitDecode && decode_next) decode_round(step + 1, 1);

        const uint8_t* wt = w_s + buf * kRowsPerBlock * kPitch;
        const float* sc = scale_s + buf * kStepChunks * kRowsPerBlock;
        const float* mn = min_s + buf * kStepChunks * kRowsPerBlock;
        const uint8_t* xb = x_s + buf * kTokensPerBlock * kPitch;
        const float2* db = ds_s + buf * kStepChunks * kTokensPerBlock;
        if constexpr (kFoldMin) {
            // The step's min term: rows' mins (A, k = the step's 8 chunks) times the tokens' chunk
            // sums x_scale * sum(x_q) (B), one MMA per 16 x 8 accumulator tile.
            const uint32_t* mw = reinterpret_cast<const uint32_t*>(min_h + buf * kRowsPerBlock * kStepChunks);
            uint32_t am[2][2];
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int h = 0; h < 2; ++h) am[i][h] = mw[(warp_m + 16 * i + 8 * h + g) * (kStepChunks / 2) + t4];
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const int tok = warp_n + 8 * j + g;
                const float2 p0 = db[(2 * t4) * kTokensPerBlock + tok], p1 = db[(2 * t4 + 1) * kTokensPerBlock + tok];
                const uint32_t bm = pack_half2(p0.x * (1.0f / kMinScale) * p0.y, p1.x * (1.0f / kMinScale) * p1.y);
#pragma unroll
                for (int i = 0; i < 2; ++i) mma_f16_k8(acc[i][j], am[i], bm);
            }
        }
        int S[2][4][4];  // kIntStep: the step's sum_c sc_c * dot_c
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j)
#pragma unroll
                for (int e = 0; e < 4; ++e) S[i][j][e] = 0;
#pragma unroll kUnroll
        for (int k = 0; k < kStepChunks; ++k) {
            // kSplitDecode: the second half of the next step's decode between this step's chunks
            // 3 and 4, to spread the shared-memory traffic of the decode over the step.
            if (kSplitDecode && k == kStepChunks / 2 && decode_next) decode_round(step + 1, 1);
            uint32_t a[2][4];
#pragma unroll
            for (int i = 0; i < 2; ++i)
                load_fragments(a[i], wt + (warp_m + 16 * i + (lane & 15)) * kPitch + 32 * k + (lane >> 4) * 16);
            uint32_t b[2][4];  // n8 tiles 2jj (b[jj][0..1]) and 2jj + 1 (b[jj][2..3])
#pragma unroll
            for (int jj = 0; jj < 2; ++jj)
                load_fragments(b[jj], xb + (warp_n + 16 * jj + ((lane >> 4) << 3) + (lane & 7)) * kPitch + 32 * k +
                                          ((lane >> 3) & 1) * 16);
            if constexpr (kIntStep) {
                const float4 sc4 = load_shared_f4(sc + k * kRowsPerBlock + warp_m + 4 * g);
                const int sci[2][2] = {{__float_as_int(sc4.x), __float_as_int(sc4.y)},
                                       {__float_as_int(sc4.z), __float_as_int(sc4.w)}};
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const uint32_t b0 = b[j >> 1][2 * (j & 1)], b1 = b[j >> 1][2 * (j & 1) + 1];
#pragma unroll
                    for (int i = 0; i < 2; ++i) {
                        int d[4];
                        mma_s8_from(d, a[i], b0, b1, 0);
#pragma unroll
                        for (int e = 0; e < 4; ++e) S[i][j][e] += d[e] * sci[i][e >> 1];
                    }
                }
                continue;
            }
            // Rows g, g + 8, g + 16, g + 24 of the warp's 32: one 16-byte read (scale_slot).
            const float4 sw4 = load_shared_f4(sc + k * kRowsPerBlock + warp_m + 4 * g);
            constexpr bool kMinPerChunk = F::kHasMin && !kFoldMin;
            const float4 sm4 = kMinPerChunk ? load_shared_f4(mn + k * kRowsPerBlock + warp_m + 4 * g) : float4{};
            const float sw[2][2] = {{sw4.x, sw4.y}, {sw4.z, sw4.w}};
            const float sm[2][2] = {{sm4.x, sm4.y}, {sm4.z, sm4.w}};
            float nswb[2][2];
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int h = 0; h < 2; ++h) nswb[i][h] = -sw[i][h] * kBias;  // exact, see the top of the file
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const int tok = warp_n + 8 * j + 2 * t4;
                // One 16-byte read (the compiler splits a plain one into two 4-byte reads of the
                // scales when the sums are not needed).
                const float4 pair = load_shared_f4(db + k * kTokensPerBlock + tok);
                const float dx[2] = {pair.x, pair.z};
                const float dsum[2] = {pair.x * pair.y, pair.z * pair.w};
                const uint32_t b0 = b[j >> 1][2 * (j & 1)], b1 = b[j >> 1][2 * (j & 1) + 1];
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    int d[4];
                    mma_s8_from(d, a[i], b0, b1, kBiasedZero);
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int h = e >> 1;
                        const float u = __fmaf_rn(sw[i][h], __int_as_float(d[e]), nswb[i][h]);  // w_scale * dot
                        float v = __fmaf_rn(u, dx[e & 1], acc[i][j][e]);
                        if constexpr (kMinPerChunk) v = __fmaf_rn(sm[i][h], dsum[e & 1], v);
                        acc[i][j][e] = v;
                    }
                }
            }
        }
        if constexpr (kIntStep) {
            // acc += d * x_scale * S; the activation scale is one per step (chunk 0's).
            const float4 d4 = load_shared_f4(superd_s + buf * kRowsPerBlock + warp_m + 4 * g);
            const float dr[2][2] = {{d4.x, d4.y}, {d4.z, d4.w}};
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const float4 pair = load_shared_f4(db + warp_n + 8 * j + 2 * t4);
                const float dx[2] = {pair.x, pair.z};
#pragma unroll
                for (int i = 0; i < 2; ++i)
#pragma unroll
                    for (int e = 0; e < 4; ++e)
                        acc[i][j][e] = __fmaf_rn(__int2float_rn(S[i][j][e]), dr[i][e >> 1] * dx[e & 1], acc[i][j][e]);
            }
        }
    }

    store_mma_tiles(acc, m0 + warp_m, n0 + warp_n, g, t4, rows, n_tokens, y, ldy, bias, residual, ldr);
}

template <class F, int kUnroll, bool kSplitDecode, bool kFoldMin = false, bool kIntStep = false>
void launch_overlapped(const DeviceMatrix& W, const ActInput& in, float* y, int ldy, const float* bias,
                       const float* residual, int ldr, cudaStream_t stream) {
    constexpr auto kernel = matmul_int8_overlapped_kernel<F, kUnroll, kSplitDecode, kFoldMin, kIntStep>;
    constexpr size_t smem = shared_bytes<F>();
    static const bool configured = [] {
        cuda_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
                   "cudaFuncSetAttribute (overlapped int8 matmul)");
        return true;
    }();
    (void)configured;
    const dim3 grid((in.n_tokens + kTokensPerBlock - 1) / kTokensPerBlock, (W.rows + kRowsPerBlock - 1) / kRowsPerBlock);
    launch_kernel("overlapped int8 matmul kernel", kernel, grid, kThreads, smem, stream, W.data, W.row_bytes, W.rows,
                  W.cols / 32, in.q, in.ds, in.n_tokens, y, ldy, bias, residual, ldr);
}

}  // namespace

bool matmul_int8_overlapped(const DeviceMatrix& W, const ActInput& in, float* y, int ldy, const float* bias,
                            const float* residual, int ldr, cudaStream_t stream) {
    // APR_CUDA_MM_V2=0: matmul_int8_pipelined's own kernel, for A/B measurements; 2 (default):
    // this kernel, MMA loop unrolled by 2, the decode split around the middle of the MMAs; 1: the
    // decode in one piece before the MMAs; 3: as 2, MMA loop unrolled by 4. H200, 7B pp512,
    // tokens/s for 0 / 1 / 2 / 3: Q4_0 8,891 / 10,310 / 10,430 / 10,412, Q4_K 8,058 / 8,945 /
    // 9,232 / 9,281.
    static const int variant = [] {
        const char* v = std::getenv("APR_CUDA_MM_V2");
        return v && *v ? std::atoi(v) : 2;
    }();
    // APR_CUDA_MM_FOLD_MIN=0: the min term per chunk (see the top of the file); only variant 2
    // folds it.
    static const bool fold_min = [] {
        const char* v = std::getenv("APR_CUDA_MM_FOLD_MIN");
        return !(v && *v == '0');
    }();
    // APR_CUDA_MM_INT_STEP=0: Q4_K / Q5_K scale each chunk in float (see the top of the file);
    // 1 (default): integer steps, the decode split around the middle of the MMAs as variant 2;
    // 2: integer steps, the decode in one piece before the MMAs (fewer registers live across it).
    // Only with the folded min term.
    static const int int_step = [] {
        const char* v = std::getenv("APR_CUDA_MM_INT_STEP");
        return v && *v ? std::atoi(v) : 1;
    }();
    if (variant <= 0) return false;
    bool launched = false;
    dispatch_quant_format(W.type, [&](auto format) {
        using F = decltype(format);
        if constexpr (fits<F>()) {
            if (!admitted<F>()) return;
            if constexpr (F::kHasMin) {
                if constexpr (has_int_scales<F>()) {
                    if (variant == 2 && fold_min && int_step != 0 && in.format == ActFormat::Q8_K) {
                        if (int_step == 2)
                            launch_overlapped<F, 2, false, true, true>(W, in, y, ldy, bias, residual, ldr, stream);
                        else
                            launch_overlapped<F, 2, true, true, true>(W, in, y, ldy, bias, residual, ldr, stream);
                        launched = true;
                        return;
                    }
                }
                if (variant == 2 && fold_min) {
                    launch_overlapped<F, 2, true, true>(W, in, y, ldy, bias, residual, ldr, stream);
                    launched = true;
                    return;
                }
            }
            if (variant == 1)
                launch_overlapped<F, 2, false>(W, in, y, ldy, bias, residual, ldr, stream);
            else if (variant == 3)
                launch_overlapped<F, 4, true>(W, in, y, ldy, bias, residual, ldr, stream);
            else
                launch_overlapped<F, 2, true>(W, in, y, ldy, bias, residual, ldr, stream);
            launched = true;
        }
    });
    return launched;
}

}  // namespace apr_cuda
