// Quantization of matrix-product inputs to Q8_0 / Q8_K (ActFormat, kernels.hpp) by one warp for
// 256 consecutive values, 8 per lane (lane l holds values 8l .. 8l+7): a Q8_0 block of 32 is
// then 4 neighbouring lanes and a Q8_K block the whole warp, so block maxima and chunk sums are a
// few shuffles. Shared by the preparation kernel (activations.cu), the attention combine
// (attention.cu) and the decode mat-vec epilogues (matvec_seg.cu), so that every producer of
// a prepared input rounds exactly alike. The arithmetic follows the core's reference
// (round_activation_for): IEEE divisions, rint (ties to even), the Q8_0 scale rounded to f16 only
// where it is stored.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "kernels.hpp"

namespace apr_cuda {

// Writes the lane's 8 int8 values to q (q points at value 8 * lane's block of 256, i.e. the
// caller passes the 256 values' start) and each 32-chunk's {scale, sum of q} to ds[0..7].
// All 32 lanes must call it; `store` false computes (the shuffles need every lane) but writes
// nothing (lanes past the end of a row).
template <ActFormat A>
__device__ __forceinline__ void quantize_warp_256(const float (&v)[8], int lane, int8_t* q, float2* ds, bool store) {
    static_assert(A == ActFormat::Q8_0 || A == ActFormat::Q8_K, "int8 formats only");
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
    int qi[8];
    int sum = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        qi[i] = int(rintf(v[i] * mul));
        if constexpr (A == ActFormat::Q8_K) qi[i] = min(qi[i], 127);
        sum += qi[i];
    }
    // Sums over each chunk of 32 (4 lanes).
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    if (!store) return;
    uint2 packed;
    packed.x = uint32_t(qi[0] & 255) | uint32_t(qi[1] & 255) << 8 | uint32_t(qi[2] & 255) << 16 |
               uint32_t(qi[3] & 255) << 24;
    packed.y = uint32_t(qi[4] & 255) | uint32_t(qi[5] & 255) << 8 | uint32_t(qi[6] & 255) << 16 |
               uint32_t(qi[7] & 255) << 24;
    *reinterpret_cast<uint2*>(q + 8 * lane) = packed;
    if ((lane & 3) == 0) ds[lane / 4] = make_float2(stored, float(sum));
}

// SwiGLU's value for gate g and up u, as the preparation kernel and the fused gate/up epilogue
// (matvec_seg.cu) compute it.
__device__ __forceinline__ float swiglu_value(float g, float u) { return g / (1.0f + expf(-g)) * u; }

}  // namespace apr_cuda
