// Prefill mat-mat on the tensor cores: Y[t][r] = W[r] . X[t] for a tile of 64 weight rows x 64
// tokens per block of 4 warps. Per step of 32 along the reduction, half the threads decode one
// 32-element chunk of a weight row each (weight_formats.cuh) and the other half load one token's
// 32 activations; both land in shared memory as f16, and each warp runs 2x2 16x16x16 wmma tiles
// with f32 accumulators. The quantized weights are decoded once per 64 tokens and never stored
// dequantized in device memory. The epilogue goes through shared memory so that bias, residual
// and the edges of the matrix are handled with plain coalesced stores.
#include <mma.h>

#include "kernels.hpp"
#include "weight_formats.cuh"

namespace apr_cuda {
namespace {

constexpr int kTileM = 64;  // weight rows per block
constexpr int kTileN = 64;  // tokens per block
constexpr int kTileK = 32;  // one chunk
constexpr int kPadK = kTileK + 8;   // f16 row pitch in shared memory (multiple of 8, breaks bank conflicts)
constexpr int kPadM = kTileM + 4;   // f32 pitch of the output tile
constexpr int kThreads = 128;

template <class F>
__global__ void __launch_bounds__(kThreads)
    matmul_kernel(const uint8_t* __restrict__ W, size_t row_bytes, int rows, int cols, const float* __restrict__ x,
                  int ldx, int n_tokens, float* y, int ldy, const float* __restrict__ bias, const float* residual,
                  int ldr) {
    using namespace nvcuda;
    __shared__ __align__(32) __half a_tile[kTileM][kPadK];  // weights, [row][k]
    __shared__ __align__(32) __half b_tile[kTileN][kPadK];  // activations, [token][k] = K x N column-major
    __shared__ __align__(32) float c_tile[kTileN][kPadM];   // results, [token][row]

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

    for (int c = 0; c < n_chunks; ++c) {
        if (tid < kTileM) {
            const int r = m0 + tid;
            float w[32];
            if (r < rows) {
                F::chunk(W + size_t(r) * row_bytes, c, cols, w);
            } else {
#pragma unroll
                for (int k = 0; k < 32; ++k) w[k] = 0.0f;
            }
#pragma unroll
            for (int k = 0; k < 32; k += 2)
                *reinterpret_cast<__half2*>(&a_tile[tid][k]) = __floats2half2_rn(w[k], w[k + 1]);
        } else {
            const int t = tid - kTileM;
            const int tok = n0 + t;
            float v[32];
            const float* xr = x + size_t(tok) * ldx + c * 32;
            if (tok < n_tokens && c * 32 + 32 <= cols && vector_x) {
#pragma unroll
                for (int i = 0; i < 8; ++i) {
                    const float4 f = __ldg(reinterpret_cast<const float4*>(xr) + i);
                    v[4 * i] = f.x; v[4 * i + 1] = f.y; v[4 * i + 2] = f.z; v[4 * i + 3] = f.w;
                }
            } else {
#pragma unroll
                for (int k = 0; k < 32; ++k) v[k] = (tok < n_tokens && c * 32 + k < cols) ? __ldg(xr + k) : 0.0f;
            }
#pragma unroll
            for (int k = 0; k < 32; k += 2)
                *reinterpret_cast<__half2*>(&b_tile[t][k]) = __floats2half2_rn(v[k], v[k + 1]);
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

    // C is M x N; stored column-major it lands as c_tile[token][row].
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
