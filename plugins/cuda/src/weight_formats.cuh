// Device-side decoding of every weight type, shared by all kernels (mat-vec, mat-mat,
// embeddings). The unit of work is a "chunk": 32 consecutive elements of one row. For the
// 32-element block formats a chunk is one block; for the K-quants (256-element super-blocks)
// it is one of the eight 32-element sub-blocks; for F32/F16/BF16 it is 32 plain values (a
// last, partial chunk is padded with zeros when the row length is not a multiple of 32).
//
// Each format is a struct with
//   static __device__ void chunk(const uint8_t* row, int c, int cols, float w[32])
// writing elements 32c .. 32c+31 of `row` to w. Block layouts are ggml's (see backend.h).
// Rows start 16-byte aligned in device memory; blocks inside a row are only as aligned as the
// block size allows (2 bytes for 18-, 22-, 34- and 210-byte blocks), so loads are sized to it.
//
// The quantized formats also decode a chunk to integers for int8 dot products against
// activations quantized to int8 (activation_formats.cuh):
//   static __device__ void chunk_q8(const uint8_t* block, int j, QuantChunk& out)
// with `block` the block holding the chunk (in global or shared memory: plain loads, no __ldg)
// and j the chunk's index inside it (0 for the 32-element formats). Element e of the chunk is
// a * (q_e - kZero) + m, where q_e is byte e % 4 of word out.q[e / 4] (an int8), a is out.a0 for
// e < 16 and out.a1 for e >= 16 (equal except for Q6_K, kTwoScales), and m is out.m (zero unless
// kHasMin). kBlockBytes / kBlockChunks give the block size in bytes and in chunks.
#pragma once

#include <apr/backend.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels.hpp"

namespace apr_cuda {

__device__ __forceinline__ float load_half(const uint8_t* p) {
    return __half2float(*reinterpret_cast<const __half*>(p));
}

// A chunk decoded to int8 values, see the top of the file.
struct QuantChunk {
    int32_t q[8];
    float a0, a1, m;
};

// Plain loads that work on global and shared memory alike.
__device__ __forceinline__ float half_at(const uint8_t* p) { return __half2float(*reinterpret_cast<const __half*>(p)); }
__device__ __forceinline__ uint32_t u32_at_a2(const uint8_t* p) {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
    return uint32_t(h[0]) | uint32_t(h[1]) << 16;
}
__device__ __forceinline__ uint32_t u32_at_a4(const uint8_t* p) { return *reinterpret_cast<const uint32_t*>(p); }
// Bits 0..3 of x as bit 0 of bytes 0..3 (the four partial products do not overlap, so no carries).
__device__ __forceinline__ uint32_t spread4(uint32_t x) { return ((x & 15u) * 0x00204081u) & 0x01010101u; }

// n bytes (n even) from a 2-byte aligned address.
template <int N>
__device__ __forceinline__ void load_bytes_a2(const uint8_t* p, uint8_t* out) {
    const uint16_t* p16 = reinterpret_cast<const uint16_t*>(p);
#pragma unroll
    for (int i = 0; i < N / 2; ++i) {
        const uint16_t v = __ldg(p16 + i);
        out[2 * i] = uint8_t(v & 0xff);
        out[2 * i + 1] = uint8_t(v >> 8);
    }
}

// n bytes (n a multiple of 4) from a 4-byte aligned address.
template <int N>
__device__ __forceinline__ void load_bytes_a4(const uint8_t* p, uint8_t* out) {
    const uint32_t* p32 = reinterpret_cast<const uint32_t*>(p);
#pragma unroll
    for (int i = 0; i < N / 4; ++i) {
        const uint32_t v = __ldg(p32 + i);
        out[4 * i] = uint8_t(v);
        out[4 * i + 1] = uint8_t(v >> 8);
        out[4 * i + 2] = uint8_t(v >> 16);
        out[4 * i + 3] = uint8_t(v >> 24);
    }
}

// ---- plain floating-point rows -------------------------------------------------------------

struct FormatF32 {
    static constexpr uint32_t type = APR_TYPE_F32;
    static __device__ __forceinline__ void chunk(const uint8_t* row, int c, int cols, float* w) {
        const float* r = reinterpret_cast<const float*>(row) + c * 32;
        if (c * 32 + 32 <= cols && (cols % 4) == 0) {
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const float4 v = __ldg(reinterpret_cast<const float4*>(r) + i);
                w[4 * i] = v.x; w[4 * i + 1] = v.y; w[4 * i + 2] = v.z; w[4 * i + 3] = v.w;
            }
        } else {
#pragma unroll
            for (int i = 0; i < 32; ++i) w[i] = (c * 32 + i < cols) ? __ldg(r + i) : 0.0f;
        }
    }
};

struct FormatF16 {
    static constexpr uint32_t type = APR_TYPE_F16;
    static __device__ __forceinline__ void chunk(const uint8_t* row, int c, int cols, float* w) {
        const __half* r = reinterpret_cast<const __half*>(row) + c * 32;
        if (c * 32 + 32 <= cols && (cols % 8) == 0) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const uint4 v = __ldg(reinterpret_cast<const uint4*>(r) + i);
                const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    __half2 h2 = *reinterpret_cast<const __half2*>(&words[j]);
                    const float2 f = __half22float2(h2);
                    w[8 * i + 2 * j] = f.x;
                    w[8 * i + 2 * j + 1] = f.y;
                }
            }
        } else {
#pragma unroll
            for (int i = 0; i < 32; ++i) w[i] = (c * 32 + i < cols) ? __half2float(r[i]) : 0.0f;
        }
    }
};

struct FormatBF16 {
    static constexpr uint32_t type = APR_TYPE_BF16;
    static __device__ __forceinline__ void chunk(const uint8_t* row, int c, int cols, float* w) {
        const uint16_t* r = reinterpret_cast<const uint16_t*>(row) + c * 32;
        if (c * 32 + 32 <= cols && (cols % 8) == 0) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const uint4 v = __ldg(reinterpret_cast<const uint4*>(r) + i);
                const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    w[8 * i + 2 * j] = __uint_as_float(words[j] << 16);
                    w[8 * i + 2 * j + 1] = __uint_as_float(words[j] & 0xffff0000u);
                }
            }
        } else {
#pragma unroll
            for (int i = 0; i < 32; ++i) w[i] = (c * 32 + i < cols) ? __uint_as_float(uint32_t(r[i]) << 16) : 0.0f;
        }
    }
};

// ---- 32-element block formats ----------------------------------------------------------------

// Q4_0: fp16 d, 16 bytes; byte j holds element j (low nibble) and j+16 (high); x = d * (q - 8).
struct FormatQ4_0 {
    static constexpr uint32_t type = APR_TYPE_Q4_0;
    static __device__ __forceinline__ void chunk(const uint8_t* row, int c, int, float* w) {
        const uint8_t* b = row + size_t(c) * 18;
        const float d = load_half(b);
        uint8_t q[16];
        load_bytes_a2<16>(b + 2, q);
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            w[j] = d * float(int(q[j] & 15) - 8);
            w[j + 16] = d * float(int(q[j] >> 4) - 8);
        }
    }
    static constexpr int kBlockBytes = 18, kBlockChunks = 1, kZero = 8;
    static constexpr bool kHasMin = false, kTwoScales = false;
    static __device__ __forceinline__ void chunk_q8(const uint8_t* b, int, QuantChunk& o) {
        o.a0 = o.a1 = half_at(b);
        o.m = 0.0f;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint32_t w = u32_at_a2(b + 2 + 4 * i);
            o.q[i] = int32_t(w & 0x0f0f0f0fu);
            o.q[4 + i] = int32_t((w >> 4) & 0x0f0f0f0fu);
        }
    }
};

// Q4_1: fp16 d, fp16 m, 16 bytes of nibbles as Q4_0; x = d * q + m.
struct FormatQ4_1 {
    static constexpr uint32_t type = APR_TYPE_Q4_1;
    static __device__ __forceinline__ void chunk(const uint8_t* row, int c, int, float* w) {
        const uint8_t* b = row + size_t(c) * 20;
        const float d = load_half(b), m = load_half(b + 2);
        uint8_t q[16];
        load_bytes_a4<16>(b + 4, q);
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            w[j] = d * float(q[j] & 15) + m;
            w[j + 16] = d * float(q[j] >> 4) + m;
        }
    }
    static constexpr int kBlockBytes = 20, kBlockChunks = 1, kZero = 0;
    static constexpr bool kHasMin = true, kTwoScales = false;
    static __device__ __forceinline__ void chunk_q8(const uint8_t* b, int, QuantChunk& o) {
        o.a0 = o.a1 = half_at(b);
        o.m = half_at(b + 2);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint32_t w = u32_at_a4(b + 4 + 4 * i);
            o.q[i] = int32_t(w & 0x0f0f0f0fu);
            o.q[4 + i] = int32_t((w >> 4) & 0x0f0f0f0fu);
        }
    }
};

// Q5_0: fp16 d, 32 high bits (bit j is element j's fifth bit), 16 bytes of low nibbles;
// x = d * (q - 16).
struct FormatQ5_0 {
    static constexpr uint32_t type = APR_TYPE_Q5_0;
    static __device__ __forceinline__ void chunk(const uint8_t* row, int c, int, float* w) {
        const uint8_t* b = row + size_t(c) * 22;
        const float d = load_half(b);
        uint8_t raw[20];
        load_bytes_a2<20>(b + 2, raw);
        const uint32_t qh = uint32_t(raw[0]) | uint32_t(raw[1]) << 8 | uint32_t(raw[2]) << 16 | uint32_t(raw[3]) << 24;
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            const int lo = (raw[4 + j] & 15) | int((qh >> j) & 1) << 4;
            const int hi = (raw[4 + j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
            w[j] = d * float(lo - 16);
            w[j + 16] = d * float(hi - 16);
        }
    }
    static constexpr int kBlockBytes = 22, kBlockChunks = 1, kZero = 16;
    static constexpr bool kHasMin = false, kTwoScales = false;
    static __device__ __forceinline__ void chunk_q8(const uint8_t* b, int, QuantChunk& o) {
        o.a0 = o.a1 = half_at(b);
        o.m = 0.0f;
        const uint32_t qh = u32_at_a2(b + 2);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint32_t w = u32_at_a2(b + 6 + 4 * i);
            o.q[i] = int32_t((w & 0x0f0f0f0fu) | spread4(qh >> (4 * i)) << 4);
            o.q[4 + i] = int32_t(((w >> 4) & 0x0f0f0f0fu) | spread4(qh >> (16 + 4 * i)) << 4);
        }
    }
};

// Q5_1: fp16 d, fp16 m, 32 high bits, 16 bytes of low nibbles; x = d * q + m.
struct FormatQ5_1 {
    static constexpr uint32_t type = APR_TYPE_Q5_1;
    static __device__ __forceinline__ void chunk(const uint8_t* row, int c, int, float* w) {
        const uint8_t* b = row + size_t(c) * 24;
        const float d = load_half(b), m = load_half(b + 2);
        const uint32_t qh = __ldg(reinterpret_cast<const uint32_t*>(b + 4));
        uint8_t q[16];
        load_bytes_a4<16>(b + 8, q);
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            const int lo = (q[j] & 15) | int((qh >> j) & 1) << 4;
            const int hi = (q[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
            w[j] = d * float(lo) + m;
            w[j + 16] = d * float(hi) + m;
        }
    }
    static constexpr int kBlockBytes = 24, kBlockChunks = 1, kZero = 0;
    static constexpr bool kHasMin = true, kTwoScales = false;
    static __device__ __forceinline__ void chunk_q8(const uint8_t* b, int, QuantChunk& o) {
        o.a0 = o.a1 = half_at(b);
        o.m = half_at(b + 2);
        const uint32_t qh = u32_at_a4(b + 4);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint32_t w = u32_at_a4(b + 8 + 4 * i);
            o.q[i] = int32_t((w & 0x0f0f0f0fu) | spread4(qh >> (4 * i)) << 4);
            o.q[4 + i] = int32_t(((w >> 4) & 0x0f0f0f0fu) | spread4(qh >> (16 + 4 * i)) << 4);
        }
    }
};

// Q8_0: fp16 d, 32 int8; x = d * q.
struct FormatQ8_0 {
    static constexpr uint32_t type = APR_TYPE_Q8_0;
    static __device__ __forceinline__ void chunk(const uint8_t* row, int c, int, float* w) {
        const uint8_t* b = row + size_t(c) * 34;
        const float d = load_half(b);
        uint8_t q[32];
        load_bytes_a2<32>(b + 2, q);
#pragma unroll
        for (int j = 0; j < 32; ++j) w[j] = d * float(int8_t(q[j]));
    }
    static constexpr int kBlockBytes = 34, kBlockChunks = 1, kZero = 0;
    static constexpr bool kHasMin = false, kTwoScales = false;
    static __device__ __forceinline__ void chunk_q8(const uint8_t* b, int, QuantChunk& o) {
        o.a0 = o.a1 = half_at(b);
        o.m = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; ++i) o.q[i] = int32_t(u32_at_a2(b + 2 + 4 * i));
    }
};

// Q4_0 regrouped at upload (weight_repack.hpp): each run of 8 blocks (256 elements) is stored as
// their 8 fp16 scales (16 bytes) followed by their 8 x 16 quant bytes, so that a block's quants
// are one aligned 16-byte load; same values and row length as Q4_0. Only matrices whose rows are
// whole runs (cols % 256 == 0) are regrouped.
struct FormatQ4_0x8 {
    static constexpr uint32_t type = kTypeQ4_0x8;
    static __device__ __forceinline__ void chunk(const uint8_t* row, int c, int, float* w) {
        const uint8_t* g = row + size_t(c >> 3) * 144;
        const int j = c & 7;
        const float d = load_half(g + 2 * j);
        const uint4 q4 = __ldg(reinterpret_cast<const uint4*>(g + 16 + 16 * j));
        const uint32_t words[4] = {q4.x, q4.y, q4.z, q4.w};
#pragma unroll
        for (int k = 0; k < 16; ++k) {
            const uint32_t byte = (words[k >> 2] >> (8 * (k & 3))) & 0xff;
            w[k] = d * float(int(byte & 15) - 8);
            w[k + 16] = d * float(int(byte >> 4) - 8);
        }
    }
    static constexpr int kBlockBytes = 144, kBlockChunks = 8, kZero = 8;
    static constexpr bool kHasMin = false, kTwoScales = false;
    static __device__ __forceinline__ void chunk_q8(const uint8_t* b, int j, QuantChunk& o) {
        o.a0 = o.a1 = half_at(b + 2 * j);
        o.m = 0.0f;
        const uint4 q4 = *reinterpret_cast<const uint4*>(b + 16 + 16 * j);
        const uint32_t words[4] = {q4.x, q4.y, q4.z, q4.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            o.q[i] = int32_t(words[i] & 0x0f0f0f0fu);
            o.q[4 + i] = int32_t((words[i] >> 4) & 0x0f0f0f0fu);
        }
    }
};

// ---- K-quants (256-element super-blocks; a chunk is sub-block c % 8 of super-block c / 8) ----

// Q4_K / Q5_K pack eight 6-bit scales and eight 6-bit mins in 12 bytes: sub-blocks 0-3 use the
// low 6 bits of bytes 0-3 (scales) and 4-7 (mins); sub-blocks 4-7 take their low 4 bits from
// bytes 8-11 and their top 2 bits from the top of bytes 0-3 (scales) and 4-7 (mins).
__device__ __forceinline__ void k_scale_min(const uint8_t* s, int j, float& sc, float& mn) {
    if (j < 4) {
        sc = float(s[j] & 63);
        mn = float(s[j + 4] & 63);
    } else {
        sc = float((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
        mn = float((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

// k_scale_min's scale of sub-block j as the integer it is.
__device__ __forceinline__ int k_scale_int(const uint8_t* s, int j) {
    return j < 4 ? s[j] & 63 : (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
}

// Q4_K: fp16 d, fp16 dmin, scales[12], qs[128]. Sub-blocks 2i and 2i+1 share qs[32i .. 32i+31]
// (low and high nibbles). x = d * sc * q - dmin * m.
struct FormatQ4_K {
    static constexpr uint32_t type = APR_TYPE_Q4_K;
    static __device__ __forceinline__ void chunk(const uint8_t* row, int c, int, float* w) {
        const uint8_t* b = row + size_t(c >> 3) * 144;
        const int j = c & 7;
        const float d = load_half(b), dmin = load_half(b + 2);
        uint8_t s[12];
        load_bytes_a4<12>(b + 4, s);
        float sc, mn;
        k_scale_min(s, j, sc, mn);
        const float d1 = d * sc, m1 = dmin * mn;
        const uint4* qs = reinterpret_cast<const uint4*>(b + 16 + (j >> 1) * 32);
        const int shift = (j & 1) * 4;
#pragma unroll
        for (int v = 0; v < 2; ++v) {
            const uint4 q4 = __ldg(qs + v);
            const uint32_t words[4] = {q4.x, q4.y, q4.z, q4.w};
#pragma unroll
            for (int k = 0; k < 16; ++k) {
                const uint32_t byte = (words[k >> 2] >> (8 * (k & 3))) & 0xff;
                w[16 * v + k] = d1 * float((byte >> shift) & 15) - m1;
            }
        }
    }
    static constexpr int kBlockBytes = 144, kBlockChunks = 8, kZero = 0;
    static constexpr bool kHasMin = true, kTwoScales = false;
    static __device__ __forceinline__ void chunk_q8(const uint8_t* b, int j, QuantChunk& o) {
        float sc, mn;
        k_scale_min(b + 4, j, sc, mn);
        o.a0 = o.a1 = half_at(b) * sc;
        o.m = -(half_at(b + 2) * mn);
        const uint8_t* qs = b + 16 + (j >> 1) * 32;
        const int shift = (j & 1) * 4;
#pragma unroll
        for (int i = 0; i < 8; ++i) o.q[i] = int32_t((u32_at_a4(qs + 4 * i) >> shift) & 0x0f0f0f0fu);
    }
    // The chunk's weight scale o.a0 is d * chunk_sc (the super-block's fp16 d, a 6-bit integer).
    static __device__ __forceinline__ float super_d(const uint8_t* b) { return half_at(b); }
    static __device__ __forceinline__ int chunk_sc(const uint8_t* b, int j) { return k_scale_int(b + 4, j); }
};

// Q4_K regrouped at upload (weight_repack.hpp), the same bits in another order so that the
// decode mat-vec reads a sub-block as one aligned 16-byte segment and its scale and min without
// k_scale_min's two cases: fp16 d, fp16 dmin; a word whose bits 4j..4j+3 are the top 2 bits of
// sub-block j's scale then of its min; 8 bytes (scale & 15) | (min & 15) << 4, one per sub-block;
// then sub-block j's 32 quants in bytes 16 + 16j .. 31 + 16j, element k in the low nibble of byte
// k and element k + 16 in its high nibble (Q4_0's order). x = d * sc * q - dmin * m as Q4_K.
__device__ __forceinline__ void kx8_scale_min(uint32_t high, uint32_t low, int j, float& sc, float& mn) {
    const uint32_t h = high >> (4 * j);
    sc = float((low & 15) | (h & 3) << 4);
    mn = float((low >> 4 & 15) | (h >> 2 & 3) << 4);
}

struct FormatQ4_Kx8 {
    static constexpr uint32_t type = kTypeQ4_Kx8;
    static __device__ __forceinline__ void chunk(const uint8_t* row, int c, int, float* w) {
        const uint8_t* b = row + size_t(c >> 3) * 144;
        const int j = c & 7;
        const float d = load_half(b), dmin = load_half(b + 2);
        float sc, mn;
        kx8_scale_min(__ldg(reinterpret_cast<const uint32_t*>(b + 4)), __ldg(b + 8 + j), j, sc, mn);
        const float d1 = d * sc, m1 = dmin * mn;
        const uint4 q4 = __ldg(reinterpret_cast<const uint4*>(b + 16 + 16 * j));
        const uint32_t words[4] = {q4.x, q4.y, q4.z, q4.w};
#pragma unroll
        for (int k = 0; k < 16; ++k) {
            const uint32_t byte = (words[k >> 2] >> (8 * (k & 3))) & 0xff;
            w[k] = d1 * float(byte & 15) - m1;
            w[k + 16] = d1 * float(byte >> 4) - m1;
        }
    }
    static constexpr int kBlockBytes = 144, kBlockChunks = 8, kZero = 0;
    static constexpr bool kHasMin = true, kTwoScales = false;
    static __device__ __forceinline__ void chunk_q8(const uint8_t* b, int j, QuantChunk& o) {
        float sc, mn;
        kx8_scale_min(u32_at_a4(b + 4), b[8 + j], j, sc, mn);
        o.a0 = o.a1 = half_at(b) * sc;
        o.m = -(half_at(b + 2) * mn);
        const uint4 q4 = *reinterpret_cast<const uint4*>(b + 16 + 16 * j);
        const uint32_t words[4] = {q4.x, q4.y, q4.z, q4.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            o.q[i] = int32_t(words[i] & 0x0f0f0f0fu);
            o.q[4 + i] = int32_t((words[i] >> 4) & 0x0f0f0f0fu);
        }
    }
    static __device__ __forceinline__ float super_d(const uint8_t* b) { return half_at(b); }
    static __device__ __forceinline__ int chunk_sc(const uint8_t* b, int j) {
        return (b[8 + j] & 15) | (u32_at_a4(b + 4) >> (4 * j) & 3) << 4;
    }
};

// Q5_K: fp16 d, fp16 dmin, scales[12], qh[32], qs[128]. As Q4_K, plus bit j of qh[l] as the
// fifth bit of element l of sub-block j.
struct FormatQ5_K {
    static constexpr uint32_t type = APR_TYPE_Q5_K;
    static __device__ __forceinline__ void chunk(const uint8_t* row, int c, int, float* w) {
        const uint8_t* b = row + size_t(c >> 3) * 176;
        const int j = c & 7;
        const float d = load_half(b), dmin = load_half(b + 2);
        uint8_t s[12];
        load_bytes_a4<12>(b + 4, s);
        float sc, mn;
        k_scale_min(s, j, sc, mn);
        const float d1 = d * sc, m1 = dmin * mn;
        const uint4* qh = reinterpret_cast<const uint4*>(b + 16);
        const uint4* qs = reinterpret_cast<const uint4*>(b + 48 + (j >> 1) * 32);
        const int shift = (j & 1) * 4;
#pragma unroll
        for (int v = 0; v < 2; ++v) {
            const uint4 q4 = __ldg(qs + v), h4 = __ldg(qh + v);
            const uint32_t qw[4] = {q4.x, q4.y, q4.z, q4.w};
            const uint32_t hw[4] = {h4.x, h4.y, h4.z, h4.w};
#pragma unroll
            for (int k = 0; k < 16; ++k) {
                const uint32_t byte = (qw[k >> 2] >> (8 * (k & 3))) & 0xff;
                const uint32_t high = (hw[k >> 2] >> (8 * (k & 3) + j)) & 1;
                w[16 * v + k] = d1 * float(((byte >> shift) & 15) | (high << 4)) - m1;
            }
        }
    }
    static constexpr int kBlockBytes = 176, kBlockChunks = 8, kZero = 0;
    static constexpr bool kHasMin = true, kTwoScales = false;
    static __device__ __forceinline__ void chunk_q8(const uint8_t* b, int j, QuantChunk& o) {
        float sc, mn;
        k_scale_min(b + 4, j, sc, mn);
        o.a0 = o.a1 = half_at(b) * sc;
        o.m = -(half_at(b + 2) * mn);
        const uint8_t* qs = b + 48 + (j >> 1) * 32;
        const int shift = (j & 1) * 4;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t low = (u32_at_a4(qs + 4 * i) >> shift) & 0x0f0f0f0fu;
            const uint32_t high = (u32_at_a4(b + 16 + 4 * i) >> j) & 0x01010101u;
            o.q[i] = int32_t(low | high << 4);
        }
    }
    static __device__ __forceinline__ float super_d(const uint8_t* b) { return half_at(b); }
    static __device__ __forceinline__ int chunk_sc(const uint8_t* b, int j) { return k_scale_int(b + 4, j); }
};

// Q6_K: ql[128], qh[64], int8 scales[16], fp16 d. Two halves of 128 elements; in half h,
// element l (0..31) of quarter k takes its low 4 bits from ql[64h + l + 32(k&1)] (low nibble for
// k < 2, high for k >= 2), its top 2 bits from qh[32h + l] >> 2k, and scale scales[8h + l/16 + 2k].
// x = d * scale * (q - 32).
struct FormatQ6_K {
    static constexpr uint32_t type = APR_TYPE_Q6_K;
    static __device__ __forceinline__ void chunk(const uint8_t* row, int c, int, float* w) {
        const uint8_t* b = row + size_t(c >> 3) * 210;
        const int j = c & 7, h = j >> 2, k = j & 3;
        uint8_t ql[32], qh[32];
        load_bytes_a2<32>(b + 64 * h + 32 * (k & 1), ql);
        load_bytes_a2<32>(b + 128 + 32 * h, qh);
        const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192 + 8 * h + 2 * k);
        const float d = load_half(b + 208);
        const float d0 = d * float(scales[0]), d1 = d * float(scales[1]);
        const int nib_shift = (k >> 1) * 4;
#pragma unroll
        for (int l = 0; l < 32; ++l) {
            const int q = (((ql[l] >> nib_shift) & 15) | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
            w[l] = (l < 16 ? d0 : d1) * float(q);
        }
    }
    static constexpr int kBlockBytes = 210, kBlockChunks = 8, kZero = 0;
    static constexpr bool kHasMin = false, kTwoScales = true;
    static __device__ __forceinline__ void chunk_q8(const uint8_t* b, int j, QuantChunk& o) {
        const int h = j >> 2, k = j & 3;
        const uint8_t* ql = b + 64 * h + 32 * (k & 1);
        const uint8_t* qh = b + 128 + 32 * h;
        const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192 + 8 * h + 2 * k);
        const float d = half_at(b + 208);
        o.a0 = d * float(scales[0]);
        o.a1 = d * float(scales[1]);
        o.m = 0.0f;
        const int nib_shift = (k >> 1) * 4;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t u = ((u32_at_a2(ql + 4 * i) >> nib_shift) & 0x0f0f0f0fu) |
                               ((u32_at_a2(qh + 4 * i) >> (2 * k)) & 0x03030303u) << 4;
            o.q[i] = int32_t(__vsub4(u, 0x20202020u));  // bytes 0..63 -> -32..31
        }
    }
};

// Calls fn(Format{}) for the quantized formats with an int8 decoder (chunk_q8); returns false
// for any other type.
template <class Fn>
bool dispatch_quant_format(uint32_t type, Fn&& fn) {
    switch (type) {
        case APR_TYPE_Q4_0: fn(FormatQ4_0{}); return true;
        case kTypeQ4_0x8: fn(FormatQ4_0x8{}); return true;
        case APR_TYPE_Q4_1: fn(FormatQ4_1{}); return true;
        case APR_TYPE_Q5_0: fn(FormatQ5_0{}); return true;
        case APR_TYPE_Q5_1: fn(FormatQ5_1{}); return true;
        case APR_TYPE_Q8_0: fn(FormatQ8_0{}); return true;
        case APR_TYPE_Q4_K: fn(FormatQ4_K{}); return true;
        case kTypeQ4_Kx8: fn(FormatQ4_Kx8{}); return true;
        case APR_TYPE_Q5_K: fn(FormatQ5_K{}); return true;
        case APR_TYPE_Q6_K: fn(FormatQ6_K{}); return true;
        default: return false;
    }
}

// Calls fn(Format{}) for the plain floating-point formats; false for any other type.
template <class Fn>
bool dispatch_float_format(uint32_t type, Fn&& fn) {
    switch (type) {
        case APR_TYPE_F32: fn(FormatF32{}); return true;
        case APR_TYPE_F16: fn(FormatF16{}); return true;
        case APR_TYPE_BF16: fn(FormatBF16{}); return true;
        default: return false;
    }
}

// Calls fn(Format{}) for the format of `type`; returns false when there is none.
template <class Fn>
bool dispatch_weight_format(uint32_t type, Fn&& fn) {
    return dispatch_float_format(type, fn) || dispatch_quant_format(type, fn);
}

}  // namespace apr_cuda
