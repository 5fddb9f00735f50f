// Staging one step of the prefill mat-mats that keep their operands in shared memory
// (matmul_int8_pipelined.cu, matmul_int8_overlapped.cu), the parts both kernels do alike: the
// activation side's copies, and one weight chunk decoded into the int8 tile the MMAs read.
//
// Activations: kTokens tokens' int8 values of 8 chunks (256 bytes, sixteen 16-byte copies per
// token at a row pitch of kPitch bytes) and their chunk {scale, sum} pairs, chunk-major, so that
// an MMA thread's two neighbouring tokens are one 16-byte read. Tokens past n_tokens and chunks
// past n_chunks land as zeros. Issued by all kThreads threads of the block with cp.async; the
// caller commits and waits.
#pragma once

#include <cstdint>

#include "mma_primitives.cuh"
#include "weight_formats.cuh"

namespace apr_cuda {

// The tile geometry both kernels share: 128 weight rows x 128 tokens per block, steps of 8
// chunks (256 K values: one Q4_0x8 group, one K-quant super-block), int8 rows at a 272-byte
// pitch so that ldmatrix's rows hit distinct banks.
namespace prefill_tile {
constexpr int kRowsPerBlock = 128;
constexpr int kTokensPerBlock = 128;
constexpr int kStepChunks = 8;
constexpr int kPitch = 32 * kStepChunks + 16;
// Raw weight bytes of one row per step.
template <class F>
constexpr int kStepRawBytes = kStepChunks * F::kBlockBytes / F::kBlockChunks;
}  // namespace prefill_tile

template <int kTokens, int kThreads, int kPitch>
__device__ __forceinline__ void copy_activation_step(uint8_t* xb, float2* db, const int8_t* xq, const float2* xds,
                                                     int n0, int n_tokens, int c0, int n_chunks, int tid) {
    constexpr int kStepChunks = prefill_tile::kStepChunks;
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

// Chunk j of the weight block at `block` (shared memory, a format F block) decoded to 32 int8 at
// dst (16-byte aligned) with the zero point taken out of the integers (bytewise: every q is below
// 2 * zero <= 32, so setting each byte's top bit first keeps the subtraction from borrowing
// across bytes and clearing it after leaves q - zero mod 256), so that the tensor cores sum
// a * (q - zero) exactly; returns the chunk's scales and min. A chunk that is not `valid` (rows
// or chunks past the matrix) is written as zeros with zero scales.
template <class F>
__device__ __forceinline__ QuantChunk decode_chunk_int8(const uint8_t* block, int j, bool valid, uint8_t* dst) {
    constexpr uint32_t zero4 = uint32_t(F::kZero) * 0x01010101u;
    QuantChunk w;
    if (valid) {
        F::chunk_q8(block, j, w);
    } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) w.q[i] = int32_t(zero4);
        w.a0 = w.a1 = w.m = 0.0f;
    }
    uint32_t q[8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
        q[i] = F::kZero ? ((uint32_t(w.q[i]) | 0x80808080u) - zero4) ^ 0x80808080u : uint32_t(w.q[i]);
    uint4* d = reinterpret_cast<uint4*>(dst);
    d[0] = make_uint4(q[0], q[1], q[2], q[3]);
    d[1] = make_uint4(q[4], q[5], q[6], q[7]);
    return w;
}

}  // namespace apr_cuda
