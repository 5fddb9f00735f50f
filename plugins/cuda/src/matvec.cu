// Decode mat-vec: one warp per output row. The lanes walk the row 32 elements ("chunks",
// weight_formats.cuh) at a time, decode each chunk to f32 in registers and dot it with up to B
// token activations, then reduce across the warp. Weights are read once per row per launch and
// consecutive lanes read consecutive blocks, so the weight traffic is coalesced.
//
// Each lane needs the 32 activations of its own chunk, so a warp's activation loads would hit 32
// different 128-byte lines at once. For one or two tokens (decode) the block therefore first
// copies the activations into shared memory, 36 floats per chunk: with that pitch the lanes'
// 16-byte reads fall in distinct banks. Larger batches read them from global memory (L1).
#include "backend_error.hpp"
#include "kernels.hpp"
#include "weight_formats.cuh"

namespace apr_cuda {
namespace {

constexpr int kRowsPerBlock = 4;  // warps per block

template <class F, int B>
__global__ void __launch_bounds__(32 * kRowsPerBlock)
    matvec_kernel(const uint8_t* __restrict__ W, size_t row_bytes, int rows, int cols, const float* __restrict__ x,
                  int ldx, float* y, int ldy, const float* __restrict__ bias, const float* residual, int ldr) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5);
    if (row >= rows) return;
    const uint8_t* w_row = W + size_t(row) * row_bytes;
    const int n_chunks = (cols + 31) / 32;
    const bool vector_x = (cols % 4) == 0 && (ldx % 4) == 0;
    float acc[B];
#pragma unroll
    for (int b = 0; b < B; ++b) acc[b] = 0.0f;

    for (int c = lane; c < n_chunks; c += 32) {
        float w[32];
        F::chunk(w_row, c, cols, w);
        const bool full = c * 32 + 32 <= cols;
#pragma unroll
        for (int b = 0; b < B; ++b) {
            const float* xb = x + size_t(b) * ldx + c * 32;
            float s = 0.0f;
            if (full && vector_x) {
#pragma unroll
                for (int i = 0; i < 8; ++i) {
                    const float4 v = __ldg(reinterpret_cast<const float4*>(xb) + i);
                    s += w[4 * i] * v.x + w[4 * i + 1] * v.y + w[4 * i + 2] * v.z + w[4 * i + 3] * v.w;
                }
            } else {
#pragma unroll
                for (int i = 0; i < 32; ++i)
                    if (c * 32 + i < cols) s += w[i] * __ldg(xb + i);
            }
            acc[b] += s;
        }
    }
#pragma unroll
    for (int b = 0; b < B; ++b) {
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) acc[b] += __shfl_xor_sync(0xffffffffu, acc[b], off);
    }
    if (lane == 0) {
        const float add = bias ? bias[row] : 0.0f;
#pragma unroll
        for (int b = 0; b < B; ++b) {
            float v = acc[b] + add;
            if (residual) v += residual[size_t(b) * ldr + row];
            y[size_t(b) * ldy + row] = v;
        }
    }
}

constexpr int kSharedRowsPerBlock = 8;  // warps per block of the shared-activation kernel
constexpr int kChunkPitch = 36;         // floats per chunk in shared memory (32 + 4 of padding)

// Largest dynamic shared memory a block may ask for (set by configure_matvec); 0 = unknown.
int g_shared_limit = 0;

template <class F, int B>
__global__ void __launch_bounds__(32 * kSharedRowsPerBlock)
    matvec_shared_x_kernel(const uint8_t* __restrict__ W, size_t row_bytes, int rows, int cols,
                           const float* __restrict__ x, int ldx, float* y, int ldy, const float* __restrict__ bias,
                           const float* residual, int ldr) {
    extern __shared__ __align__(16) float x_s[];  // [B][n_chunks][kChunkPitch]
    const int n_chunks = (cols + 31) / 32;
    // Zeros past `cols` make the last, partial chunk of a float row add nothing.
    for (int b = 0; b < B; ++b)
        for (int e = threadIdx.x; e < n_chunks * 32; e += blockDim.x)
            x_s[(b * n_chunks + (e >> 5)) * kChunkPitch + (e & 31)] = e < cols ? x[size_t(b) * ldx + e] : 0.0f;
    __syncthreads();

    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * kSharedRowsPerBlock + (threadIdx.x >> 5);
    if (row >= rows) return;
    const uint8_t* w_row = W + size_t(row) * row_bytes;
    float acc[B];
#pragma unroll
    for (int b = 0; b < B; ++b) acc[b] = 0.0f;
    for (int c = lane; c < n_chunks; c += 32) {
        float w[32];
        F::chunk(w_row, c, cols, w);
#pragma unroll
        for (int b = 0; b < B; ++b) {
            const float4* xs = reinterpret_cast<const float4*>(x_s + (b * n_chunks + c) * kChunkPitch);
            float s = 0.0f;
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const float4 v = xs[i];
                s += w[4 * i] * v.x + w[4 * i + 1] * v.y + w[4 * i + 2] * v.z + w[4 * i + 3] * v.w;
            }
            acc[b] += s;
        }
    }
#pragma unroll
    for (int b = 0; b < B; ++b) {
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) acc[b] += __shfl_xor_sync(0xffffffffu, acc[b], off);
    }
    if (lane == 0) {
        const float add = bias ? bias[row] : 0.0f;
#pragma unroll
        for (int b = 0; b < B; ++b) {
            float v = acc[b] + add;
            if (residual) v += residual[size_t(b) * ldr + row];
            y[size_t(b) * ldy + row] = v;
        }
    }
}

size_t shared_x_bytes(int cols, int b) { return size_t(b) * ((cols + 31) / 32) * kChunkPitch * sizeof(float); }

// The shared-activation kernel when it fits, else the plain one.
template <class F, int B>
void launch_shared_or_global(const DeviceMatrix& W, const float* x, int ldx, float* y, int ldy, const float* bias,
                             const float* residual, int ldr, cudaStream_t stream);

template <class F, int B>
void launch(const DeviceMatrix& W, const float* x, int ldx, float* y, int ldy, const float* bias,
            const float* residual, int ldr, cudaStream_t stream) {
    const dim3 grid((W.rows + kRowsPerBlock - 1) / kRowsPerBlock);
    matvec_kernel<F, B><<<grid, 32 * kRowsPerBlock, 0, stream>>>(W.data, W.row_bytes, W.rows, W.cols, x, ldx, y, ldy,
                                                                 bias, residual, ldr);
}

template <class F, int B>
void launch_shared_or_global(const DeviceMatrix& W, const float* x, int ldx, float* y, int ldy, const float* bias,
                             const float* residual, int ldr, cudaStream_t stream) {
    const size_t smem = shared_x_bytes(W.cols, B);
    if (smem > size_t(g_shared_limit)) {
        launch<F, B>(W, x, ldx, y, ldy, bias, residual, ldr, stream);
        return;
    }
    const dim3 grid((W.rows + kSharedRowsPerBlock - 1) / kSharedRowsPerBlock);
    matvec_shared_x_kernel<F, B><<<grid, 32 * kSharedRowsPerBlock, smem, stream>>>(
        W.data, W.row_bytes, W.rows, W.cols, x, ldx, y, ldy, bias, residual, ldr);
}

}  // namespace

void configure_matvec(int max_shared_bytes) {
    // Lets every shared-activation kernel take up to the device's opt-in limit; the launch asks
    // only for what the row length needs.
    for (uint32_t type : {APR_TYPE_F32, APR_TYPE_F16, APR_TYPE_BF16, APR_TYPE_Q4_0, APR_TYPE_Q4_1, APR_TYPE_Q5_0,
                          APR_TYPE_Q5_1, APR_TYPE_Q8_0, APR_TYPE_Q4_K, APR_TYPE_Q5_K, APR_TYPE_Q6_K}) {
        dispatch_weight_format(type, [&](auto format) {
            using F = decltype(format);
            cuda_check(cudaFuncSetAttribute(matvec_shared_x_kernel<F, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            max_shared_bytes),
                       "cudaFuncSetAttribute (matvec)");
            cuda_check(cudaFuncSetAttribute(matvec_shared_x_kernel<F, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            max_shared_bytes),
                       "cudaFuncSetAttribute (matvec)");
        });
    }
    g_shared_limit = max_shared_bytes;
}

void matvec_only(const DeviceMatrix& W, const float* x, int ldx, int n_tokens, float* y, int ldy, const float* bias,
                 const float* residual, int ldr, cudaStream_t stream) {
    int t = 0;
    while (t < n_tokens) {
        const int left = n_tokens - t;
        const int b = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        const float* xt = x + size_t(t) * ldx;
        float* yt = y + size_t(t) * ldy;
        const float* rt = residual ? residual + size_t(t) * ldr : nullptr;
        dispatch_weight_format(W.type, [&](auto format) {
            using F = decltype(format);
            switch (b) {
                case 8: launch<F, 8>(W, xt, ldx, yt, ldy, bias, rt, ldr, stream); break;
                case 4: launch<F, 4>(W, xt, ldx, yt, ldy, bias, rt, ldr, stream); break;
                case 2: launch_shared_or_global<F, 2>(W, xt, ldx, yt, ldy, bias, rt, ldr, stream); break;
                default: launch_shared_or_global<F, 1>(W, xt, ldx, yt, ldy, bias, rt, ldr, stream); break;
            }
        });
        check_launch("matvec kernel");
        t += b;
    }
}

void matmul(const DeviceMatrix& W, const float* x, int ldx, int n_tokens, float* y, int ldy, const float* bias,
            const float* residual, int ldr, cudaStream_t stream) {
    if (n_tokens <= 8)
        matvec_only(W, x, ldx, n_tokens, y, ldy, bias, residual, ldr, stream);
    else
        matmul_tiled(W, x, ldx, n_tokens, y, ldy, bias, residual, ldr, stream);
}

}  // namespace apr_cuda
