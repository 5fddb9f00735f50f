// Prefill mat-mat on the tensor cores: Y[t][r] = W[r] . X[t] for a tile of 64 weight rows x 64
// tokens per block of 4 warps. Per step of 128 along the reduction (four 32-element chunks),
// the threads decode the 64 x 4 weight chunks (weight_formats.cuh; four neighbouring lanes take
// the four chunks of one row, so a warp reads 8 contiguous runs) and load the 64 x 128
// activations (a warp reads one token's 512 contiguous bytes per instruction); both land in
// shared memory as f16, and each warp runs 2x2 16x16x16 wmma tiles over them with f32
// accumulators. The quantized weights are decoded once per 64 tokens and never stored
// dequantized in device memory. The epilogue goes through shared memory so that bias, residual
// and the edges of the matrix are handled with plain coalesced stores.
#include <mma.h>

#include "kernels.hpp"
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

}  // namespace

void matmul_tiled(const DeviceMatrix& W, const float* x, int ldx, int n_tokens, float* y, int ldy, const float* bias,
                  const float* residual, int ldr, cudaStream_t stream) {
    const dim3 grid((W.rows + kTileM - 1) / kTileM, (n_tokens + kTileN - 1) / kTileN);
    dispatch_weight_format(W.type, [&](auto format) {
        using F = decltype(format);
        matmul_kernel<F><<<grid, kThreads, 0, stream>>>(W.data, W.row_bytes, W.rows, W.cols, x, ldx, n_tokens, y, ldy,
                                                        bias, residual, ldr);
    });
    check_launch("tiled matmul kernel");
}

}  // namespace apr_cuda
