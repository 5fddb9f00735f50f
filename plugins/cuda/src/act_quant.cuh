// The quantization of matrix-product inputs to Q8_0 / Q8_K blocks (ActFormat, kernels.hpp), as a
// warp-level step shared by every kernel that prepares inputs (activations.cu, the fused RMSNorm
// of matvec_seg.cu), so that all of them produce the same bits. A warp takes 256 consecutive
// values, 8 per lane (lane l holds values 8l .. 8l+7): a Q8_0 block of 32 is then 4 neighbouring
// lanes and a Q8_K block of 256 the whole warp. The arithmetic follows the core's reference
// (round_activation_for) operation for operation: IEEE divisions, rint (ties to even), the Q8_0
// scale rounded to f16 only where it is stored.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "kernels.hpp"

namespace apr_cuda {

// Threads per block of the preparation kernel (activations.cu); a fused RMSNorm that must give
// the same bits sums its squares in the order of this many threads.
constexpr int kPrepareThreads = 512;

__device__ __forceinline__ float warp_sum_xor(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// Quantizes the lane's 8 values v (all 32 lanes call it together) and, when `store`, writes the
// lane's 8 int8 to q (8-byte aligned) and, from the first lane of each chunk of 32, the chunk's
// {scale, sum of q} to *ds.
template <ActFormat A>
__device__ __forceinline__ void quantize_warp_8(const float (&v)[8], int lane, bool store, int8_t* q, float2* ds) {
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
    // Sums over the chunk of 32 (4 lanes).
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    if (store) {
        uint2 packed;
        packed.x = uint32_t(qi[0] & 255) | uint32_t(qi[1] & 255) << 8 | uint32_t(qi[2] & 255) << 16 |
                   uint32_t(qi[3] & 255) << 24;
        packed.y = uint32_t(qi[4] & 255) | uint32_t(qi[5] & 255) << 8 | uint32_t(qi[6] & 255) << 16 |
                   uint32_t(qi[7] & 255) << 24;
        *reinterpret_cast<uint2*>(q) = packed;
        if ((lane & 3) == 0) *ds = make_float2(stored, float(sum));
    }
}

}  // namespace apr_cuda
