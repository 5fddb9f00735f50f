// Prefill mat-mat on the tensor cores, Y[t][r] = W[r] . X[t], two kernels, plus the pipelined
// int8 kernel of matmul_int8_pipelined.cu, which matmul_tiled tries first (quantized weights, at
// least kPipelinedMinTokens tokens, one scale per chunk, 16-byte aligned rows):
//
// Quantized weights (matmul_q8_kernel): int8 x int8 mma.sync m16n8k32, one MMA per 32-element
// chunk, so that each chunk's exact integer dot product is scaled by its own weight and
// activation scales (and the weight's min / zero point) before it joins the f32 accumulators:
// the same numbers as the decode mat-vec and as llama.cpp's quantized dot products. A block of 4
// warps takes 64 weight rows x 64 tokens; per step of four chunks the threads decode the weight
// chunks to int8 (chunk_q8, four neighbouring threads per row) and copy the activations' int8
// and chunk scales into shared memory (144-byte row pitch: the fragment loads hit 32 different
// banks); each warp then runs 2 x 4 MMAs per chunk for its 32 x 32 sub-tile. Q6_K's two scales
// per chunk take two MMAs, one per half.
//
// Float weights (matmul_kernel): a tile of 64 weight rows x 64
// tokens per block of 4 warps. Per step of 128 along the reduction (four 32-element chunks),
// the threads decode the 64 x 4 weight chunks (weight_formats.cuh; four neighbouring lanes take
// the four chunks of one row, so a warp reads 8 contiguous runs) and load the 64 x 128
// activations (a warp reads one token's 512 contiguous bytes per instruction); both land in
// shared memory as f16, and each warp runs 2x2 16x16x16 wmma tiles over them with f32
// accumulators. The quantized weights are decoded once per 64 tokens and never stored
// dequantized in device memory. The epilogue goes through shared memory so that bias, residual
// and the edges of the matrix are handled with plain coalesced stores.
#include <mma.h>

#include <string>

#include "backend_error.hpp"
#include "kernels.hpp"
#include "launch.cuh"
#include "mma_primitives.cuh"
#include "mma_tile_store.cuh"
#include "matmul_int8_pipelined.hpp"
#include "weight_formats.cuh"

namespace apr_cuda {
namespace {

constexpr int kTileM = 64;            // weight rows per block
constexpr int kTileN = 64;            // tokens per block
constexpr int kChunksPerStep = 4;     // 32-element chunks per reduction step
constexpr int kTileK = 32 * kChunksPerStep;
constexpr int kPadK = kTileK + 8;     // f16 row pitch in shared memory (multiple of 8; staggers banks)
constexpr int kPadM = kTileM + 4;     // f32 pitch of the output tile
constexpr int kThreads = 128;
constexpr size_t kTileBytes = size_t(kTileM) * kPadK * sizeof(__half);
static_assert(kTileBytes * 2 >= size_t(kTileN) * kPadM * sizeof(float), "output tile must fit the input tiles");

template <class F>
__global__ void __launch_bounds__(kThreads)
    matmul_kernel(const uint8_t* __restrict__ W, size_t row_bytes, int rows, int cols, const float* __restrict__ x,
                  int ldx, int n_tokens, float* y, int ldy, const float* __restrict__ bias, const float* residual,
                  int ldr) {
    wait_for_previous_kernel();
    using namespace nvcuda;
    // Weights [row][k] and activations [token][k] (= K x N column-major); after the main loop
    // the same bytes hold the results [token][row].
    __shared__ __align__(128) unsigned char smem[2 * kTileBytes];
    auto a_tile = reinterpret_cast<__half(*)[kPadK]>(smem);
    auto b_tile = reinterpret_cast<__half(*)[kPadK]>(smem + kTileBytes);
    auto c_tile = reinterpret_cast<float(*)[kPadM]>(smem);

    const int tid = threadIdx.x;
    const int warp = tid >> 5;
    const int warp_m = (warp >> 1) * 32, warp_n = (warp & 1) * 32;
    const int m0 = blockIdx.x * kTileM, n0 = blockIdx.y * kTileN;
    const int n_chunks = (cols + 31) / 32;
    const bool vector_x = (cols % 4) == 0 && (ldx % 4) == 0;

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

    for (int c0 = 0; c0 < n_chunks; c0 += kChunksPerStep) {
        // Activations: 64 tokens x 128 values = 2048 float4, 16 per thread.
#pragma unroll 4
        for (int i = 0; i < (kTileN * kTileK / 4) / kThreads; ++i) {
            const int idx = tid + kThreads * i;
            const int t = idx / (kTileK / 4), k4 = idx % (kTileK / 4);
            const int tok = n0 + t, k = c0 * 32 + 4 * k4;
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (tok < n_tokens) {
                const float* xr = x + size_t(tok) * ldx + k;
                if (vector_x) {
                    if (k < cols) v = __ldg(reinterpret_cast<const float4*>(xr));
                } else {
                    if (k < cols) v.x = __ldg(xr);
                    if (k + 1 < cols) v.y = __ldg(xr + 1);
                    if (k + 2 < cols) v.z = __ldg(xr + 2);
                    if (k + 3 < cols) v.w = __ldg(xr + 3);
                }
            }
            __half2* dst = reinterpret_cast<__half2*>(&b_tile[t][4 * k4]);
            dst[0] = __floats2half2_rn(v.x, v.y);
            dst[1] = __floats2half2_rn(v.z, v.w);
        }
        // Weights: 64 rows x 4 chunks, two per thread.
#pragma unroll
        for (int i = 0; i < (kTileM * kChunksPerStep) / kThreads; ++i) {
            const int idx = tid + kThreads * i;
            const int r_local = idx / kChunksPerStep, part = idx % kChunksPerStep;
            const int r = m0 + r_local, c = c0 + part;
            float w[32];
            if (r < rows && c < n_chunks) {
                F::chunk(W + size_t(r) * row_bytes, c, cols, w);
            } else {
#pragma unroll
                for (int k = 0; k < 32; ++k) w[k] = 0.0f;
            }
            __half2* dst = reinterpret_cast<__half2*>(&a_tile[r_local][32 * part]);
#pragma unroll
            for (int k = 0; k < 32; k += 2) dst[k / 2] = __floats2half2_rn(w[k], w[k + 1]);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kTileK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b[2];
#pragma unroll
            for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(a[i], &a_tile[warp_m + 16 * i][kk], kPadK);
#pragma unroll
            for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], &b_tile[warp_n + 16 * j][kk], kPadK);
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }

    // C is M x N; stored column-major it lands as c_tile[token][row]. The loop above ended with
    // a barrier, so the input tiles are free to be overwritten.
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j)
            wmma::store_matrix_sync(&c_tile[warp_n + 16 * j][warp_m + 16 * i], acc[i][j], kPadM,
                                    wmma::mem_col_major);
    __syncthreads();
    for (int idx = tid; idx < kTileM * kTileN; idx += kThreads) {
        const int t = idx / kTileM, m = idx % kTileM;
        const int tok = n0 + t, r = m0 + m;
        if (tok >= n_tokens || r >= rows) continue;
        float v = c_tile[t][m];
        if (bias) v += bias[r];
        if (residual) v += residual[size_t(tok) * ldr + r];
        y[size_t(tok) * ldy + r] = v;
    }
}

// ---- quantized weights: int8 MMA -------------------------------------------------------------

constexpr int kQ8Chunks = 4;                  // chunks per step
constexpr int kQ8Pitch = 32 * kQ8Chunks + 16;  // bytes per row / token in shared memory

// Registers capped for 4 blocks (16 warps) per SM, against 3 uncapped: 7,982 tokens/s instead of
// 6,150 for a 7B Q4_0 pp512 on the H200 (5,717 with 8 chunks per step, uncapped). Q4_0x8 and
// Q8_0 do not spill at that cap; the other formats spill a few dozen bytes.
template <class F>
__global__ void __launch_bounds__(kThreads, 4)
    matmul_q8_kernel(const uint8_t* __restrict__ W, size_t row_bytes, int rows, int n_chunks,
                     const int8_t* __restrict__ xq, const float2* __restrict__ xds, int n_tokens, float* y, int ldy,
                     const float* __restrict__ bias, const float* residual, int ldr) {
    wait_for_previous_kernel();
    __shared__ __align__(16) uint8_t w_s[kTileM][kQ8Pitch];
    __shared__ __align__(16) uint8_t x_s[kTileN][kQ8Pitch];
    __shared__ float wa0_s[kTileM][kQ8Chunks], wa1_s[kTileM][kQ8Chunks], wm_s[kTileM][kQ8Chunks];
    __shared__ float2 ds_s[kTileN][kQ8Chunks];

    const int tid = threadIdx.x;
    const int lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t4 = lane & 3;
    const int warp_m = (warp >> 1) * 32, warp_n = (warp & 1) * 32;
    const int m0 = blockIdx.x * kTileM, n0 = blockIdx.y * kTileN;
    const int cols = n_chunks * 32;

    float acc[2][4][4] = {};

    for (int c0 = 0; c0 < n_chunks; c0 += kQ8Chunks) {
        // Weights: 64 rows x 4 chunks, two per thread.
#pragma unroll
        for (int k = 0; k < (kTileM * kQ8Chunks) / kThreads; ++k) {
            const int idx = tid + kThreads * k;
            const int r_local = idx / kQ8Chunks, part = idx % kQ8Chunks;
            const int r = m0 + r_local, c = c0 + part;
            QuantChunk w;
            if (r < rows && c < n_chunks) {
                F::chunk_q8(W + size_t(r) * row_bytes + size_t(c / F::kBlockChunks) * F::kBlockBytes,
                            c % F::kBlockChunks, w);
            } else {
#pragma unroll
                for (int i = 0; i < 8; ++i) w.q[i] = 0;
                w.a0 = w.a1 = w.m = 0.0f;
            }
            uint4* dst = reinterpret_cast<uint4*>(&w_s[r_local][32 * part]);
            dst[0] = make_uint4(w.q[0], w.q[1], w.q[2], w.q[3]);
            dst[1] = make_uint4(w.q[4], w.q[5], w.q[6], w.q[7]);
            wa0_s[r_local][part] = w.a0;
            wa1_s[r_local][part] = w.a1;
            wm_s[r_local][part] = w.m;
        }
        // Activations: 64 tokens x 128 bytes = 512 uint4, four per thread; scales two per thread.
#pragma unroll
        for (int k = 0; k < (kTileN * kQ8Chunks * 2) / kThreads; ++k) {
            const int idx = tid + kThreads * k;
            const int t_local = idx / (kQ8Chunks * 2), part = idx % (kQ8Chunks * 2);
            const int tok = n0 + t_local, c = c0 + part / 2;
            uint4 v = make_uint4(0, 0, 0, 0);
            if (tok < n_tokens && c < n_chunks)
                v = __ldg(reinterpret_cast<const uint4*>(xq + size_t(tok) * cols + size_t(c) * 32) + (part & 1));
            *reinterpret_cast<uint4*>(&x_s[t_local][16 * part]) = v;
        }
#pragma unroll
        for (int k = 0; k < (kTileN * kQ8Chunks) / kThreads; ++k) {
            const int idx = tid + kThreads * k;
            const int t_local = idx / kQ8Chunks, part = idx % kQ8Chunks;
            const int tok = n0 + t_local, c = c0 + part;
            ds_s[t_local][part] = (tok < n_tokens && c < n_chunks) ? __ldg(xds + size_t(tok) * n_chunks + c)
                                                                    : make_float2(0.0f, 0.0f);
        }
        __syncthreads();

#pragma unroll
        for (int k = 0; k < kQ8Chunks; ++k) {
            uint32_t a[2][4];
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const int r = warp_m + 16 * i + g;
                a[i][0] = *reinterpret_cast<const uint32_t*>(&w_s[r][32 * k + 4 * t4]);
                a[i][1] = *reinterpret_cast<const uint32_t*>(&w_s[r + 8][32 * k + 4 * t4]);
                a[i][2] = *reinterpret_cast<const uint32_t*>(&w_s[r][32 * k + 16 + 4 * t4]);
                a[i][3] = *reinterpret_cast<const uint32_t*>(&w_s[r + 8][32 * k + 16 + 4 * t4]);
            }
            // Row scales of this thread's four rows (g, g+8 of each 16-row tile).
            float ra0[2][2], ra1[2][2], rm[2][2];
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const int r = warp_m + 16 * i + g + 8 * h;
                    ra0[i][h] = wa0_s[r][k];
                    ra1[i][h] = wa1_s[r][k];
                    rm[i][h] = wm_s[r][k];
                }
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const int tb = warp_n + 8 * j;
                const uint32_t b0 = *reinterpret_cast<const uint32_t*>(&x_s[tb + g][32 * k + 4 * t4]);
                const uint32_t b1 = *reinterpret_cast<const uint32_t*>(&x_s[tb + g][32 * k + 16 + 4 * t4]);
                const float2 dsx[2] = {ds_s[tb + 2 * t4][k], ds_s[tb + 2 * t4 + 1][k]};
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    if constexpr (F::kTwoScales) {
                        const uint32_t lo[4] = {a[i][0], a[i][1], 0u, 0u};
                        const uint32_t hi[4] = {0u, 0u, a[i][2], a[i][3]};
                        int d_lo[4] = {0, 0, 0, 0}, d_hi[4] = {0, 0, 0, 0};
                        mma_s8(d_lo, lo, b0, b1);
                        mma_s8(d_hi, hi, b0, b1);
#pragma unroll
                        for (int e = 0; e < 4; ++e) {
                            const int h = e >> 1;
                            acc[i][j][e] += dsx[e & 1].x * (ra0[i][h] * float(d_lo[e]) + ra1[i][h] * float(d_hi[e]));
                        }
                    } else {
                        int d[4] = {0, 0, 0, 0};
                        mma_s8(d, a[i], b0, b1);
#pragma unroll
                        for (int e = 0; e < 4; ++e) {
                            const int h = e >> 1;
                            const int sum_q = int(dsx[e & 1].y);
                            float v = ra0[i][h] * float(d[e] - F::kZero * sum_q);
                            if constexpr (F::kHasMin) v += rm[i][h] * float(sum_q);
                            acc[i][j][e] += dsx[e & 1].x * v;
                        }
                    }
                }
            }
        }
        __syncthreads();
    }

    store_mma_tiles(acc, m0 + warp_m, n0 + warp_n, g, t4, rows, n_tokens, y, ldy, bias, residual, ldr);
}

}  // namespace

void matmul_tiled(const DeviceMatrix& W, const ActInput& in, float* y, int ldy, const float* bias,
                  const float* residual, int ldr, cudaStream_t stream) {
    if (act_format_for(W.type) != in.format || in.cols != W.cols)
        throw BackendError(APR_ERR_INTERNAL, "tiled matmul: weight type " + std::to_string(W.type) +
                                                 " given an input prepared for another format");
    if (matmul_int8_pipelined(W, in, y, ldy, bias, residual, ldr, stream)) {
        check_launch("pipelined int8 matmul kernel");
        return;
    }
    const dim3 grid((W.rows + kTileM - 1) / kTileM, (in.n_tokens + kTileN - 1) / kTileN);
    const bool quantized = dispatch_quant_format(W.type, [&](auto format) {
        using F = decltype(format);
        launch_kernel("tiled int8 matmul kernel", matmul_q8_kernel<F>, grid, kThreads, 0, stream, W.data, W.row_bytes,
                      W.rows, W.cols / 32, in.q, in.ds, in.n_tokens, y, ldy, bias, residual, ldr);
    });
    if (!quantized) {
        dispatch_float_format(W.type, [&](auto format) {
            using F = decltype(format);
            launch_kernel("tiled matmul kernel", matmul_kernel<F>, grid, kThreads, 0, stream, W.data, W.row_bytes,
                          W.rows, W.cols, in.x, in.ldx,
                                                            in.n_tokens, y, ldy, bias, residual, ldr);
        });
    }
    check_launch("tiled matmul kernel");
}

}  // namespace apr_cuda
