// Prefill mat-mat for quantized weights at large token counts, Y[t][r] = W[r] . X[t], on int8
// tensor cores with a copy pipeline: the kernel matmul_tiled picks for the bulk of a prompt.
//
// Numerics are those of matmul_q8_kernel (matmul.cu) and of llama.cpp's int8 path: for every
// 32-element chunk an exact integer dot product of the weight's integers (zero point already
// subtracted) with the activation's int8 values, scaled by the chunk's weight scale times the
// activation scale, plus the weight min times the activation's scaled sum for formats with a
// min; f32 across chunks.
//
// A block of 8 warps computes 128 weight rows x 128 tokens (warp tile 32 x 64: 2 x 8 mma.sync
// m16n8k32 per chunk). Per step of 8 chunks (256 values: one Q4_0x8 group, one K-quant
// super-block, eight 32-element blocks) cp.async copies the raw weight bytes of the 128 rows, the
// activations' int8 and their chunk scales into shared memory, double buffered so the next
// step's copies fly during this step's work. The threads then decode the raw weight chunks once
// per block (chunk_q8 of weight_formats.cuh, from shared memory) into an int8 tile and its
// scales, and each warp reads its fragments with ldmatrix.
//
// H200, 7B pp512 against the 64 x 64 tiles alone: Q4_0 8,065 -> 8,926 tokens/s, Q4_K 6,354 ->
// 7,909; the 4096 x 4096 product takes 352 us under ncu (1.35 GHz), issue-latency bound: 8 warps
// per SM (255 registers, one block per SM for its 164 KB of shared memory) issue once per 4.1
// cycles each. matmul_int8_overlapped.cu (tried first; APR_CUDA_MM_V2=0 skips it) runs twice the
// warps and overlaps the decode with the MMAs; this kernel stays for Q8_0 (too many raw bytes for
// its shared memory) and for A/B measurements.
//
// Requirements, checked by int8_pipelined_supported: one scale per chunk (not Q6_K), raw
// bytes of a step and of a row multiples of 16 (16-byte copies) and a 16-byte aligned matrix.
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend_error.hpp"
#include "kernels.hpp"
#include "mma_primitives.cuh"
#include "launch.cuh"
#include "mma_tile_store.cuh"
#include "prefill_tile_staging.cuh"
#include "matmul_int8_overlapped.hpp"
#include "matmul_int8_pipelined.hpp"
#include "weight_formats.cuh"

namespace apr_cuda {
namespace {

using namespace prefill_tile;
constexpr int kThreads = 256;

template <class F>
constexpr size_t shared_bytes() {
    return size_t(2) * kRowsPerBlock * kStepRawBytes<F> +            // raw weights, two stages
           size_t(2) * kTokensPerBlock * kPitch +                       // activations, two stages
           size_t(2) * kStepChunks * kTokensPerBlock * sizeof(float2) + // activation scales, two stages
           size_t(kRowsPerBlock) * kPitch +                             // decoded weights
           size_t(2) * kStepChunks * kRowsPerBlock * sizeof(float);     // weight scales and mins
}

template <class F>
__global__ void __launch_bounds__(kThreads, 1)
    matmul_int8_pipelined_kernel(const uint8_t* __restrict__ W, size_t row_bytes, int rows, int n_chunks,
                                 const int8_t* __restrict__ xq, const float2* __restrict__ xds, int n_tokens,
                                 float* y, int ldy, const float* __restrict__ bias, const float* residual, int ldr) {
    constexpr int kRaw = kStepRawBytes<F>;
    static_assert(kRaw % 16 == 0, "a step's raw weight bytes must be whole 16-byte copies");
    static_assert(!F::kTwoScales, "one weight scale per chunk");
    extern __shared__ __align__(16) uint8_t smem[];
    uint8_t* raw_s = smem;                                                        // [2][rows][kRaw]
    uint8_t* x_s = raw_s + 2 * kRowsPerBlock * kRaw;                              // [2][tokens][kPitch]
    float2* ds_s = reinterpret_cast<float2*>(x_s + 2 * kTokensPerBlock * kPitch);  // [2][chunk][tokens]
    uint8_t* w_s = reinterpret_cast<uint8_t*>(ds_s + 2 * kStepChunks * kTokensPerBlock);  // [rows][kPitch]
    float* scale_s = reinterpret_cast<float*>(w_s + kRowsPerBlock * kPitch);          // [chunk][rows]
    float* min_s = scale_s + kStepChunks * kRowsPerBlock;                              // [chunk][rows]

    wait_for_previous_kernel();
    const int tid = threadIdx.x;
    const int lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t4 = lane & 3;
    const int warp_m = (warp & 3) * 32, warp_n = (warp >> 2) * 64;
    // Token tiles vary fastest: the blocks that share a weight tile run together and read it
    // from DRAM once.
    const int n0 = blockIdx.x * kTokensPerBlock, m0 = blockIdx.y * kRowsPerBlock;
    const int n_steps = (n_chunks + kStepChunks - 1) / kStepChunks;

    auto load_step = [&](int step, int buf) {
        const int c0 = step * kStepChunks;
        const size_t w_off = size_t(c0 / F::kBlockChunks) * F::kBlockBytes;
        uint8_t* raw = raw_s + buf * kRowsPerBlock * kRaw;
        for (int idx = tid; idx < kRowsPerBlock * (kRaw / 16); idx += kThreads) {
            const int r = idx / (kRaw / 16), p = idx % (kRaw / 16);
            const size_t off = w_off + 16 * size_t(p);
            const uint8_t* src = W;
            int bytes = 0;  // rows past the end and bytes past a row's end read as zeros
            if (m0 + r < rows && off < row_bytes) {
                src = W + size_t(m0 + r) * row_bytes + off;
                bytes = row_bytes - off < 16 ? int(row_bytes - off) : 16;
            }
            copy16_async(raw + r * kRaw + 16 * p, src, bytes);
        }
        copy_activation_step<kTokensPerBlock, kThreads, kPitch>(x_s + buf * kTokensPerBlock * kPitch,
                                                        ds_s + buf * kStepChunks * kTokensPerBlock, xq, xds,
                                                        n0, n_tokens, c0, n_chunks, tid);
        commit_copies();
    };

    float acc[2][8][4] = {};

    load_step(0, 0);
    for (int step = 0; step < n_steps; ++step) {
        const int buf = step & 1;
        wait_copies();
        // Everyone's copies of this step have landed, and everyone is done with the previous
        // step's buffers (the other stage, the decoded tile).
        __syncthreads();
        if (step + 1 < n_steps) load_step(step + 1, buf ^ 1);

        // Decode: 128 rows x 8 chunks, eight neighbouring threads per row.
        const uint8_t* raw = raw_s + buf * kRowsPerBlock * kRaw;
#pragma unroll
        for (int k = 0; k < kRowsPerBlock * kStepChunks / kThreads; ++k) {
            const int idx = tid + kThreads * k;
            const int r = idx / kStepChunks, j = idx % kStepChunks;
            const QuantChunk w = decode_chunk_int8<F>(raw + r * kRaw + (j / F::kBlockChunks) * F::kBlockBytes,
                                                      j % F::kBlockChunks,
                                                      m0 + r < rows && step * kStepChunks + j < n_chunks,
                                                      w_s + r * kPitch + 32 * j);
            scale_s[j * kRowsPerBlock + r] = w.a0;
            if constexpr (F::kHasMin) min_s[j * kRowsPerBlock + r] = w.m;
        }
        __syncthreads();

        const uint8_t* xb = x_s + buf * kTokensPerBlock * kPitch;
        const float2* db = ds_s + buf * kStepChunks * kTokensPerBlock;
#pragma unroll 2
        for (int k = 0; k < kStepChunks; ++k) {
            uint32_t a[2][4];
#pragma unroll
            for (int i = 0; i < 2; ++i)
                load_fragments(a[i], w_s + (warp_m + 16 * i + (lane & 15)) * kPitch + 32 * k + (lane >> 4) * 16);
            uint32_t b[4][4];  // n8 tiles 2jj (b[jj][0..1]) and 2jj + 1 (b[jj][2..3])
#pragma unroll
            for (int jj = 0; jj < 4; ++jj)
                load_fragments(b[jj], xb + (warp_n + 16 * jj + ((lane >> 4) << 3) + (lane & 7)) * kPitch + 32 * k +
                                          ((lane >> 3) & 1) * 16);
            float sw[2][2], sm[2][2];
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const int r = warp_m + 16 * i + g + 8 * h;
                    sw[i][h] = scale_s[k * kRowsPerBlock + r];
                    sm[i][h] = F::kHasMin ? min_s[k * kRowsPerBlock + r] : 0.0f;
                }
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                const int tok = warp_n + 8 * j + 2 * t4;
                const float4 pair = *reinterpret_cast<const float4*>(db + k * kTokensPerBlock + tok);
                const float2 dx[2] = {make_float2(pair.x, pair.y), make_float2(pair.z, pair.w)};
                const float dsum[2] = {dx[0].x * dx[0].y, dx[1].x * dx[1].y};
                const uint32_t b0 = b[j >> 1][2 * (j & 1)], b1 = b[j >> 1][2 * (j & 1) + 1];
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    int d[4] = {kBiasedZero, kBiasedZero, kBiasedZero, kBiasedZero};
                    mma_s8(d, a[i], b0, b1);
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int h = e >> 1;
                        float v = acc[i][j][e] + sw[i][h] * dx[e & 1].x * unbias(d[e]);
                        if constexpr (F::kHasMin) v += sm[i][h] * dsum[e & 1];
                        acc[i][j][e] = v;
                    }
                }
            }
        }
    }

    store_mma_tiles(acc, m0 + warp_m, n0 + warp_n, g, t4, rows, n_tokens, y, ldy, bias, residual, ldr);
}

template <class F>
void launch_pipelined(const DeviceMatrix& W, const ActInput& in, float* y, int ldy, const float* bias,
                      const float* residual, int ldr, cudaStream_t stream) {
    constexpr size_t smem = shared_bytes<F>();
    static const bool configured = [] {
        cuda_check(cudaFuncSetAttribute(matmul_int8_pipelined_kernel<F>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        int(smem)),
                   "cudaFuncSetAttribute (pipelined int8 matmul)");
        return true;
    }();
    (void)configured;
    const dim3 grid((in.n_tokens + kTokensPerBlock - 1) / kTokensPerBlock, (W.rows + kRowsPerBlock - 1) / kRowsPerBlock);
    launch_kernel("pipelined int8 matmul kernel", matmul_int8_pipelined_kernel<F>, grid, kThreads, smem, stream,
                  W.data, W.row_bytes, W.rows, W.cols / 32, in.q, in.ds, in.n_tokens, y, ldy, bias, residual, ldr);
}

}  // namespace

bool matmul_int8_pipelined(const DeviceMatrix& W, const ActInput& in, float* y, int ldy, const float* bias,
                           const float* residual, int ldr, cudaStream_t stream) {
    // APR_CUDA_INT8_PIPELINED=0: the 64 x 64 tiles everywhere, for measurements.
    static const bool enabled = [] {
        const char* v = std::getenv("APR_CUDA_INT8_PIPELINED");
        return !(v && std::strcmp(v, "0") == 0);
    }();
    if (!enabled || in.n_tokens < kPipelinedMinTokens || W.row_bytes % 16 != 0 || reinterpret_cast<uintptr_t>(W.data) % 16 != 0 ||
        reinterpret_cast<uintptr_t>(in.q) % 16 != 0 || reinterpret_cast<uintptr_t>(in.ds) % 8 != 0)
        return false;
    if (matmul_int8_overlapped(W, in, y, ldy, bias, residual, ldr, stream)) return true;
    bool launched = false;
    dispatch_quant_format(W.type, [&](auto format) {
        using F = decltype(format);
        if constexpr (!F::kTwoScales && kStepRawBytes<F> % 16 == 0) {
            launch_pipelined<F>(W, in, y, ldy, bias, residual, ldr, stream);
            launched = true;
        }
    });
    return launched;
}

}  // namespace apr_cuda
