// Matrix-product inputs prepared as llama.cpp multiplies them (ActFormat in kernels.hpp), in one
// kernel that can also produce the values it prepares: RMSNorm of the residual stream, or SwiGLU
// of the feed-forward gate and up projections, so that neither needs a launch of its own.
//
// Blocks of 512 threads, gridDim.y of them per row (enough that a decode step's single row is
// spread over several SMs; each block of a normalised row computes the row's sum of squares
// itself). Each warp takes 256 consecutive values at a time, 8 per lane: a Q8_0 block of 32 is then 4 neighbouring lanes and a Q8_K block of 256 the whole warp,
// so the block maxima and the chunk sums are a few shuffles. The arithmetic follows the core's
// reference (round_activation_for) operation for operation: IEEE divisions, rint (ties to
// even), the Q8_0 scale rounded to f16 only where it is stored.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <string>

#include "backend_error.hpp"
#include "kernels.hpp"
#include "launch.cuh"

namespace apr_cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;

enum class Source { Plain, Norm, Swiglu };

struct PrepareArgs {
    const float* x;    // Plain / Norm: the input rows; Swiglu: the gate rows (overwritten)
    int ldx;
    const float* aux;  // Norm: the norm weight; Swiglu: the up rows (pitch n)
    float* y;          // Norm: f32 output rows (pitch n); Swiglu: the gate rows again; Plain: unused
    int n;
    float eps;
    float* rounded;    // F16 / BF16 output, pitch n
    int8_t* q;         // Q8_* output, pitch n
    float2* ds;        // Q8_* chunk scales and sums, pitch n / 32
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

template <Source S, ActFormat A>
__global__ void __launch_bounds__(kThreads) prepare_kernel(PrepareArgs a) {
    wait_for_previous_kernel();
    const int row = blockIdx.x;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int n = a.n;
    const float* xr = a.x + size_t(row) * a.ldx;

    float scale = 1.0f;
    if constexpr (S == Source::Norm) {
        float sum = 0.0f;
        for (int i = threadIdx.x; i < n; i += kThreads) sum += xr[i] * xr[i];
        sum = warp_sum(sum);
        __shared__ float warp_sums[kWarps];
        if (lane == 0) warp_sums[warp] = sum;
        __syncthreads();
        float total = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) total += warp_sums[w];
        scale = rsqrtf(total / float(n) + a.eps);
    }

    for (int base = (blockIdx.y * kWarps + warp) * 256; base < n; base += gridDim.y * kWarps * 256) {
        const int e0 = base + lane * 8;
        float v[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const int e = e0 + i;
            float value = 0.0f;
            if (e < n) {
                if constexpr (S == Source::Plain) {
                    value = xr[e];
                } else if constexpr (S == Source::Norm) {
                    value = xr[e] * scale * a.aux[e];
                } else {
                    const float g = xr[e];
                    value = g / (1.0f + expf(-g)) * a.aux[size_t(row) * n + e];
                }
                if constexpr (S != Source::Plain) a.y[size_t(row) * n + e] = value;
            }
            v[i] = value;
        }

        if constexpr (A == ActFormat::F16 || A == ActFormat::BF16) {
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const int e = e0 + i;
                if (e >= n) continue;
                const float r = A == ActFormat::F16 ? __half2float(__float2half_rn(v[i]))
                                                    : __bfloat162float(__float2bfloat16_rn(v[i]));
                a.rounded[size_t(row) * n + e] = r;
            }
        } else if constexpr (A == ActFormat::Q8_0 || A == ActFormat::Q8_K) {
            // n is a multiple of 32 (of 256 for Q8_K), so a block is all inside or all outside.
            float amax = 0.0f;
#pragma unroll
            for (int i = 0; i < 8; ++i) amax = fmaxf(amax, fabsf(v[i]));
            constexpr int kLanesPerBlock = A == ActFormat::Q8_0 ? 4 : 32;
#pragma unroll
            for (int off = 1; off < kLanesPerBlock; off <<= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
            float mul, stored;  // q = rint(x * mul); the block's value is stored * q
            if constexpr (A == ActFormat::Q8_0) {
                const float d = amax / 127.0f;
                mul = d != 0.0f ? 1.0f / d : 0.0f;
                stored = __half2float(__float2half_rn(d));
            } else {
                mul = amax != 0.0f ? 127.0f / amax : 0.0f;
                stored = amax != 0.0f ? 1.0f / mul : 0.0f;
            }
            int q[8];
            int sum = 0;
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                q[i] = int(rintf(v[i] * mul));
                if constexpr (A == ActFormat::Q8_K) q[i] = min(q[i], 127);
                sum += q[i];
            }
            // Sums over the chunk of 32 (4 lanes).
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            if (e0 < n) {
                uint2 packed;
                packed.x = uint32_t(q[0] & 255) | uint32_t(q[1] & 255) << 8 | uint32_t(q[2] & 255) << 16 |
                           uint32_t(q[3] & 255) << 24;
                packed.y = uint32_t(q[4] & 255) | uint32_t(q[5] & 255) << 8 | uint32_t(q[6] & 255) << 16 |
                           uint32_t(q[7] & 255) << 24;
                *reinterpret_cast<uint2*>(a.q + size_t(row) * n + e0) = packed;
                if ((lane & 3) == 0) a.ds[size_t(row) * (n / 32) + e0 / 32] = make_float2(stored, float(sum));
            }
        }
    }
}

void check_capacity(const ActScratch& scratch, int n_rows, int n) {
    if (size_t(n_rows) * size_t(n) > scratch.capacity)
        throw BackendError(APR_ERR_INTERNAL, "activation scratch too small for " + std::to_string(n_rows) + " x " +
                                                 std::to_string(n) + " values");
}

void check_multiple(ActFormat f, int n) {
    const int block = f == ActFormat::Q8_0 ? 32 : f == ActFormat::Q8_K ? 256 : 1;
    if (n % block != 0)
        throw BackendError(APR_ERR_INTERNAL, "a quantized matrix product over " + std::to_string(n) +
                                                 " values (not whole blocks of " + std::to_string(block) + ")");
}

template <Source S>
ActInput launch_prepare(const PrepareArgs& args, int n_rows, ActFormat format, const float* src, int ld_src,
                        cudaStream_t stream) {
    // Blocks per row: one per kWarps * 256 values, at most 8; fewer rows than 64 only (a
    // prefill has blocks enough from its rows).
    const int per_row = n_rows >= 64 ? 1 : std::min(8, (args.n + kWarps * 256 - 1) / (kWarps * 256));
    const dim3 grid(n_rows, per_row);
    ActInput in;
    in.format = format;
    in.n_tokens = n_rows;
    in.cols = args.n;
    in.src = src;
    in.ld_src = ld_src;
    if (n_rows <= 0) return in;
    switch (format) {
        case ActFormat::F32:
            if constexpr (S != Source::Plain)
                launch_kernel("activation preparation kernel", prepare_kernel<S, ActFormat::F32>, grid, kThreads, 0, stream, args);
            in.x = src;
            in.ldx = ld_src;
            break;
        case ActFormat::F16:
            launch_kernel("activation preparation kernel", prepare_kernel<S, ActFormat::F16>, grid, kThreads, 0, stream, args);
            in.x = args.rounded;
            in.ldx = args.n;
            break;
        case ActFormat::BF16:
            launch_kernel("activation preparation kernel", prepare_kernel<S, ActFormat::BF16>, grid, kThreads, 0, stream, args);
            in.x = args.rounded;
            in.ldx = args.n;
            break;
        case ActFormat::Q8_0:
            launch_kernel("activation preparation kernel", prepare_kernel<S, ActFormat::Q8_0>, grid, kThreads, 0, stream, args);
            in.q = args.q;
            in.ds = args.ds;
            break;
        case ActFormat::Q8_K:
            launch_kernel("activation preparation kernel", prepare_kernel<S, ActFormat::Q8_K>, grid, kThreads, 0, stream, args);
            in.q = args.q;
            in.ds = args.ds;
            break;
    }
    check_launch("activation preparation kernel");
    return in;
}

PrepareArgs base_args(int n, const ActScratch& scratch, ActFormat format, int n_rows) {
    check_multiple(format, n);
    check_capacity(scratch, n_rows, n);
    PrepareArgs a{};
    a.n = n;
    a.rounded = scratch.rounded;
    a.q = scratch.q;
    a.ds = scratch.ds;
    return a;
}

}  // namespace

ActFormat act_format_for(uint32_t weight_type) {
    switch (weight_type) {
        case APR_TYPE_F16: return ActFormat::F16;
        case APR_TYPE_BF16: return ActFormat::BF16;
        case APR_TYPE_Q4_0:
        case kTypeQ4_0x8:
        case APR_TYPE_Q4_1:
        case APR_TYPE_Q5_0:
        case APR_TYPE_Q5_1:
        case APR_TYPE_Q8_0: return ActFormat::Q8_0;
        case APR_TYPE_Q4_K:
        case APR_TYPE_Q5_K:
        case APR_TYPE_Q6_K: return ActFormat::Q8_K;
        default: return ActFormat::F32;
    }
}

ActInput prepare_input(const float* x, int ldx, int n_tokens, int cols, uint32_t weight_type,
                       const ActScratch& scratch, cudaStream_t stream) {
    const ActFormat format = act_format_for(weight_type);
    PrepareArgs a = base_args(cols, scratch, format, n_tokens);
    a.x = x;
    a.ldx = ldx;
    return launch_prepare<Source::Plain>(a, n_tokens, format, x, ldx, stream);
}

ActInput prepare_input_for(const ActInput& in, uint32_t weight_type, const ActScratch& scratch,
                           cudaStream_t stream) {
    if (act_format_for(weight_type) == in.format) return in;
    return prepare_input(in.src, in.ld_src, in.n_tokens, in.cols, weight_type, scratch, stream);
}

ActInput rms_norm_prepared(const float* x, int ldx, float* y, const float* weight, int n, int n_rows, float eps,
                           uint32_t weight_type, const ActScratch& scratch, cudaStream_t stream) {
    const ActFormat format = act_format_for(weight_type);
    PrepareArgs a = base_args(n, scratch, format, n_rows);
    a.x = x;
    a.ldx = ldx;
    a.aux = weight;
    a.y = y;
    a.eps = eps;
    return launch_prepare<Source::Norm>(a, n_rows, format, y, n, stream);
}

ActInput swiglu_prepared(float* gate, const float* up, int n, int n_rows, uint32_t weight_type,
                         const ActScratch& scratch, cudaStream_t stream) {
    const ActFormat format = act_format_for(weight_type);
    PrepareArgs a = base_args(n, scratch, format, n_rows);
    a.x = gate;
    a.ldx = n;
    a.aux = up;
    a.y = gate;
    return launch_prepare<Source::Swiglu>(a, n_rows, format, gate, n, stream);
}

}  // namespace apr_cuda
