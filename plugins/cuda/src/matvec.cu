// Decode mat-vec: one warp per output row, up to B = 8 tokens per launch.
//
// Quantized weights (matvec_q8_kernel): the warp copies a stretch of its row (up to kStageBytes,
// whole 32-chunk steps; usually the whole row) from global to shared memory with the widest
// loads the row's alignment allows (16 bytes for almost every shape), all issued before any is
// used, so each warp keeps kilobytes of weight reads in flight and every load is coalesced.
// Then each lane decodes one 32-element chunk at a time to int8 (chunk_q8, weight_formats.cuh)
// and dots it with the tokens' int8 activations (__dp4a, exact integer sums), scaling by the
// weight's and the activation's chunk scales in f32.
//
// Float weights (F32/F16/BF16, matvec_kernel / matvec_shared_x_kernel): the lanes walk the row a
// chunk at a time, decode it to f32 in registers and dot it with the rounded f32 activations.
// Each lane needs the 32 activations of its own chunk, so a warp's activation loads would hit 32
// different 128-byte lines at once. For one or two tokens (decode) the block therefore first
// copies the activations into shared memory, 36 floats per chunk: with that pitch the lanes'
// 16-byte reads fall in distinct banks. Larger batches read them from global memory (L1).
#include "backend_error.hpp"
#include "kernels.hpp"
#include "weight_formats.cuh"

#include <algorithm>
#include <string>

namespace apr_cuda {
namespace {

// ---- quantized weights, int8 activations -------------------------------------------------------

constexpr int kQ8Warps = 8;          // rows (warps) per block
constexpr int kStageBytes = 4608;    // most weight bytes a warp stages at once

// The contribution of one chunk: activation chunk (32 int8 in two int4) with scale and sum.
template <class F>
__device__ __forceinline__ float chunk_dot(const QuantChunk& w, const int4& x0, const int4& x1, float2 ds) {
    int lo = 0, hi = 0;
    lo = __dp4a(w.q[0], x0.x, lo);
    lo = __dp4a(w.q[1], x0.y, lo);
    lo = __dp4a(w.q[2], x0.z, lo);
    lo = __dp4a(w.q[3], x0.w, lo);
    hi = __dp4a(w.q[4], x1.x, hi);
    hi = __dp4a(w.q[5], x1.y, hi);
    hi = __dp4a(w.q[6], x1.z, hi);
    hi = __dp4a(w.q[7], x1.w, hi);
    if constexpr (F::kTwoScales) {
        return ds.x * (w.a0 * float(lo) + w.a1 * float(hi));
    } else {
        const int sum_q = int(ds.y);
        float v = w.a0 * float(lo + hi - F::kZero * sum_q);
        if constexpr (F::kHasMin) v += w.m * float(sum_q);
        return ds.x * v;
    }
}

// Copies n bytes (a multiple of sizeof(T)) from src to the warp's shared stage, T-sized loads
// batched so that they are all in flight before the stores wait on them.
template <class T>
__device__ __forceinline__ void stage_copy(const uint8_t* __restrict__ src, uint8_t* dst, int n, int lane) {
    constexpr int kBatch = 8;
    const T* s = reinterpret_cast<const T*>(src);
    T* d = reinterpret_cast<T*>(dst);
    const int units = n / int(sizeof(T));
    for (int u0 = lane; u0 < units; u0 += 32 * kBatch) {
        T v[kBatch];
#pragma unroll
        for (int k = 0; k < kBatch; ++k)
            if (u0 + 32 * k < units) v[k] = __ldg(s + u0 + 32 * k);
#pragma unroll
        for (int k = 0; k < kBatch; ++k)
            if (u0 + 32 * k < units) d[u0 + 32 * k] = v[k];
    }
}

// `unit`: the widest load (16, 8, 4 or 2 bytes) that divides both row_bytes and the step size.
template <class F, int B>
__global__ void __launch_bounds__(32 * kQ8Warps)
    matvec_q8_kernel(const uint8_t* __restrict__ W, size_t row_bytes, int rows, int n_chunks, int unit,
                     int chunks_per_stage, const int8_t* __restrict__ xq, const float2* __restrict__ xds, float* y,
                     int ldy, const float* __restrict__ bias, const float* residual, int ldr) {
    extern __shared__ __align__(16) uint8_t stage_all[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int row = blockIdx.x * kQ8Warps + warp;
    if (row >= rows) return;  // only warp-level synchronisation below
    const int stage_bytes = chunks_per_stage / F::kBlockChunks * F::kBlockBytes;
    uint8_t* stage = stage_all + size_t(warp) * stage_bytes;
    const uint8_t* w_row = W + size_t(row) * row_bytes;
    const int cols = n_chunks * 32;

    float acc[B];
#pragma unroll
    for (int b = 0; b < B; ++b) acc[b] = 0.0f;

    for (int c0 = 0; c0 < n_chunks; c0 += chunks_per_stage) {
        const size_t byte0 = size_t(c0 / F::kBlockChunks) * F::kBlockBytes;
        const int nbytes = int(min(size_t(stage_bytes), row_bytes - byte0));
        switch (unit) {
            case 16: stage_copy<uint4>(w_row + byte0, stage, nbytes, lane); break;
            case 8: stage_copy<uint2>(w_row + byte0, stage, nbytes, lane); break;
            case 4: stage_copy<uint32_t>(w_row + byte0, stage, nbytes, lane); break;
            default: stage_copy<uint16_t>(w_row + byte0, stage, nbytes, lane); break;
        }
        __syncwarp();
        const int nc = min(chunks_per_stage, n_chunks - c0);
        for (int c = lane; c < nc; c += 32) {
            QuantChunk w;
            F::chunk_q8(stage + (c / F::kBlockChunks) * F::kBlockBytes, c % F::kBlockChunks, w);
            const int cg = c0 + c;
#pragma unroll
            for (int b = 0; b < B; ++b) {
                const int4* xp = reinterpret_cast<const int4*>(xq + size_t(b) * cols + size_t(cg) * 32);
                acc[b] += chunk_dot<F>(w, __ldg(xp), __ldg(xp + 1), __ldg(xds + size_t(b) * n_chunks + cg));
            }
        }
        __syncwarp();  // the stage is rewritten next
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

int widest_unit(size_t a, size_t b) {
    for (int u : {16, 8, 4}) if (a % u == 0 && b % u == 0) return u;
    return 2;
}

template <class F, int B>
void launch_q8(const DeviceMatrix& W, const int8_t* xq, const float2* xds, float* y, int ldy, const float* bias,
               const float* residual, int ldr, cudaStream_t stream) {
    constexpr int kStepBytes = 32 / F::kBlockChunks * F::kBlockBytes;  // 32 chunks
    const int n_chunks = W.cols / 32;
    const int steps = (n_chunks + 31) / 32;
    const int steps_per_stage = std::max(1, std::min(steps, kStageBytes / kStepBytes));
    const int chunks_per_stage = 32 * steps_per_stage;
    const size_t smem = size_t(kQ8Warps) * steps_per_stage * kStepBytes;
    const int unit = widest_unit(W.row_bytes, kStepBytes);
    const dim3 grid((W.rows + kQ8Warps - 1) / kQ8Warps);
    matvec_q8_kernel<F, B><<<grid, 32 * kQ8Warps, smem, stream>>>(W.data, W.row_bytes, W.rows, n_chunks, unit,
                                                                  chunks_per_stage, xq, xds, y, ldy, bias, residual,
                                                                  ldr);
}

// ---- float weights, f32 activations ------------------------------------------------------------

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
    // only for what the row length needs. (The int8 kernels stay under the default 48 KiB.)
    for (uint32_t type : {APR_TYPE_F32, APR_TYPE_F16, APR_TYPE_BF16}) {
        dispatch_float_format(type, [&](auto format) {
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

namespace {

[[noreturn]] void format_mismatch(const DeviceMatrix& W, const ActInput& in) {
    throw BackendError(APR_ERR_INTERNAL, "matrix product: weight type " + std::to_string(W.type) +
                                             " given an input prepared as format " +
                                             std::to_string(int(in.format)));
}

}  // namespace

void matvec_only(const DeviceMatrix& W, const ActInput& in, float* y, int ldy, const float* bias,
                 const float* residual, int ldr, cudaStream_t stream) {
    if (act_format_for(W.type) != in.format || in.cols != W.cols) format_mismatch(W, in);
    const int n_chunks = W.cols / 32;
    int t = 0;
    while (t < in.n_tokens) {
        const int left = in.n_tokens - t;
        const int b = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        float* yt = y + size_t(t) * ldy;
        const float* rt = residual ? residual + size_t(t) * ldr : nullptr;
        const bool quantized = dispatch_quant_format(W.type, [&](auto format) {
            using F = decltype(format);
            const int8_t* xq = in.q + size_t(t) * W.cols;
            const float2* xds = in.ds + size_t(t) * n_chunks;
            switch (b) {
                case 8: launch_q8<F, 8>(W, xq, xds, yt, ldy, bias, rt, ldr, stream); break;
                case 4: launch_q8<F, 4>(W, xq, xds, yt, ldy, bias, rt, ldr, stream); break;
                case 2: launch_q8<F, 2>(W, xq, xds, yt, ldy, bias, rt, ldr, stream); break;
                default: launch_q8<F, 1>(W, xq, xds, yt, ldy, bias, rt, ldr, stream); break;
            }
        });
        if (!quantized) {
            const float* xt = in.x + size_t(t) * in.ldx;
            dispatch_float_format(W.type, [&](auto format) {
                using F = decltype(format);
                switch (b) {
                    case 8: launch<F, 8>(W, xt, in.ldx, yt, ldy, bias, rt, ldr, stream); break;
                    case 4: launch<F, 4>(W, xt, in.ldx, yt, ldy, bias, rt, ldr, stream); break;
                    case 2: launch_shared_or_global<F, 2>(W, xt, in.ldx, yt, ldy, bias, rt, ldr, stream); break;
                    default: launch_shared_or_global<F, 1>(W, xt, in.ldx, yt, ldy, bias, rt, ldr, stream); break;
                }
            });
        }
        check_launch("matvec kernel");
        t += b;
    }
}

void matmul(const DeviceMatrix& W, const ActInput& in, float* y, int ldy, const float* bias, const float* residual,
            int ldr, cudaStream_t stream) {
    if (in.n_tokens <= 8)
        matvec_only(W, in, y, ldy, bias, residual, ldr, stream);
    else
        matmul_tiled(W, in, y, ldy, bias, residual, ldr, stream);
}

}  // namespace apr_cuda
