// The activation side of one step of the prefill mat-mats that stage their operands in shared
// memory (matmul_int8_pipelined.cu, matmul_int8_overlapped.cu): kTokens tokens' int8 values of 8
// chunks (256 bytes, sixteen 16-byte copies per token at a row pitch of kPitch bytes) and their chunk
// {scale, sum} pairs, chunk-major, so that an MMA thread's two neighbouring tokens are one 16-byte
// read. Tokens past n_tokens and chunks past n_chunks land as zeros. Issued by all kThreads
// threads of the block with cp.async; the caller commits and waits.
#pragma once

#include <cstdint>

#include "mma_primitives.cuh"

namespace apr_cuda {

template <int kTokens, int kThreads, int kPitch>
__device__ __forceinline__ void copy_activation_step(uint8_t* xb, float2* db, const int8_t* xq, const float2* xds,
                                                     int n0, int n_tokens, int c0, int n_chunks, int tid) {
    constexpr int kStepChunks = 8;
    static_assert(kTokens * 16 % kThreads == 0 && kTokens * kStepChunks % kThreads == 0, "whole rounds of copies");
    const int cols = n_chunks * 32;
    const int p = tid & 15, col = c0 * 32 + 16 * p;
#pragma unroll
    for (int k = 0; k < kTokens * 16 / kThreads; ++k) {
        const int t = (tid >> 4) + kThreads / 16 * k;
        const int tok = n0 + t;
        const bool ok = tok < n_tokens && col < cols;
        copy16_async(xb + t * kPitch + 16 * p, ok ? xq + size_t(tok) * cols + col : xq, ok ? 16 : 0);
    }
#pragma unroll
    for (int k = 0; k < kTokens * kStepChunks / kThreads; ++k) {
        const int idx = tid + kThreads * k;
        const int t = idx / kStepChunks, c = idx % kStepChunks;
        const int tok = n0 + t;
        const bool ok = tok < n_tokens && c0 + c < n_chunks;
        copy8_async(db + c * kTokens + t, ok ? xds + size_t(tok) * n_chunks + c0 + c : xds, ok ? 8 : 0);
    }
}

}  // namespace apr_cuda
