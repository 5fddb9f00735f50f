// Vector operations for the portable path: plain arrays and loops, the same lane semantics as
// the SIMD operation sets (simd_avx2.hpp), so kernels_impl.inl runs unchanged on any CPU.
//   I8  : 32 int8 lanes (one 32-element block)
//   I32 : 8 int32 lanes; a dot product's lane k sums the products of int8 lanes 4k .. 4k+3
//   F32 : 8 float lanes
// and the quad types of the row-grouped kernels: four slots (one weight row each) of
//   I8Q : 16 int8 lanes   I32Q : 4 int32 lanes   F32Q : 4 float lanes
// where a slot's int32 lane k sums the products of its int8 lanes 4k .. 4k+3.
#pragma once

#include <cstdint>
#include <cstring>

#include "half_float.hpp"

namespace apr_cpu {
namespace {  // internal linkage: each ISA's operations stay inside the one file built for it

struct ScalarOps {
    struct I8 { int8_t v[32]; };
    struct I32 { int32_t v[8]; };
    struct F32 { float v[8]; };

    static I8 load_i8(const void* p) { I8 r; std::memcpy(r.v, p, 32); return r; }
    static void store_i8(int8_t* p, I8 x) { std::memcpy(p, x.v, 32); }
    // 16 bytes -> lanes 0..15 = low nibbles, lanes 16..31 = high nibbles.
    static I8 nibbles16(const uint8_t* p) {
        I8 r;
        for (int j = 0; j < 16; ++j) { r.v[j] = static_cast<int8_t>(p[j] & 15); r.v[j + 16] = static_cast<int8_t>(p[j] >> 4); }
        return r;
    }
    // 32 bytes -> their low (or high) nibbles.
    static I8 nibbles_lo(const uint8_t* p) { I8 r; for (int j = 0; j < 32; ++j) r.v[j] = static_cast<int8_t>(p[j] & 15); return r; }
    static I8 nibbles_hi(const uint8_t* p) { I8 r; for (int j = 0; j < 32; ++j) r.v[j] = static_cast<int8_t>(p[j] >> 4); return r; }
    // Lane j = value where bit j of `bits` is set, else 0.
    static I8 bits_to_lanes(uint32_t bits, int8_t value) {
        I8 r; for (int j = 0; j < 32; ++j) r.v[j] = ((bits >> j) & 1u) ? value : 0; return r;
    }
    // Lane j = value where bit b of byte p[j] is set, else 0.
    static I8 bit_of_bytes(const uint8_t* p, int b, int8_t value) {
        I8 r; for (int j = 0; j < 32; ++j) r.v[j] = ((p[j] >> b) & 1u) ? value : 0; return r;
    }
    // Lane j = ((p[j] >> shift) & 3) << 4.
    static I8 field2_of_bytes(const uint8_t* p, int shift) {
        I8 r; for (int j = 0; j < 32; ++j) r.v[j] = static_cast<int8_t>(((p[j] >> shift) & 3) << 4); return r;
    }
    static I8 splat_i8(int8_t x) { I8 r; for (auto& v : r.v) v = x; return r; }
    static I8 add_i8(I8 a, I8 b) { for (int j = 0; j < 32; ++j) a.v[j] = static_cast<int8_t>(a.v[j] + b.v[j]); return a; }
    static I8 sub_i8(I8 a, I8 b) { for (int j = 0; j < 32; ++j) a.v[j] = static_cast<int8_t>(a.v[j] - b.v[j]); return a; }
    static I8 or_i8(I8 a, I8 b) { for (int j = 0; j < 32; ++j) a.v[j] = static_cast<int8_t>(a.v[j] | b.v[j]); return a; }

    static I32 dot_i8(I8 w, I8 a) {
        I32 r;
        for (int k = 0; k < 8; ++k) {
            int32_t s = 0;
            for (int j = 4 * k; j < 4 * k + 4; ++j) s += static_cast<int32_t>(w.v[j]) * a.v[j];
            r.v[k] = s;
        }
        return r;
    }
    static I32 dot_u8(I8 w, I8 a) { return dot_i8(w, a); }  // w in 0..127: the same numbers
    static I32 dot_u8_add(I32 base, I8 w, I8 a) { return add_i32(base, dot_u8(w, a)); }
    static I32 load_i32(const int32_t* p) { I32 r; std::memcpy(r.v, p, sizeof r.v); return r; }
    static I32 shl_i32(I32 a, int s) { for (auto& v : a.v) v = static_cast<int32_t>(static_cast<uint32_t>(v) << s); return a; }
    static I32 zero_i32() { I32 r{}; return r; }
    static I32 add_i32(I32 a, I32 b) { for (int k = 0; k < 8; ++k) a.v[k] += b.v[k]; return a; }
    static I32 mul_i32(I32 a, int32_t s) { for (int k = 0; k < 8; ++k) a.v[k] *= s; return a; }
    // Lanes 0..3 (int8 lanes 0..15) times lo, lanes 4..7 (int8 lanes 16..31) times hi.
    static I32 mul_i32_halves(I32 a, int32_t lo, int32_t hi) {
        for (int k = 0; k < 8; ++k) a.v[k] *= (k < 4 ? lo : hi);
        return a;
    }

    static F32 to_f32(I32 a) { F32 r; for (int k = 0; k < 8; ++k) r.v[k] = static_cast<float>(a.v[k]); return r; }
    static F32 fzero() { F32 r{}; return r; }
    static F32 fsplat(float x) { F32 r; for (auto& v : r.v) v = x; return r; }
    static F32 fadd(F32 a, F32 b) { for (int k = 0; k < 8; ++k) a.v[k] += b.v[k]; return a; }
    static F32 fmul(F32 a, F32 b) { for (int k = 0; k < 8; ++k) a.v[k] *= b.v[k]; return a; }
    static F32 fmadd(F32 a, F32 b, F32 c) { for (int k = 0; k < 8; ++k) c.v[k] += a.v[k] * b.v[k]; return c; }
    static float hsum(F32 a) {
        const float s0 = (a.v[0] + a.v[4]) + (a.v[2] + a.v[6]);
        const float s1 = (a.v[1] + a.v[5]) + (a.v[3] + a.v[7]);
        return s0 + s1;
    }
    static float half(uint16_t h) { return fp16_to_f32(h); }
    static F32 loadf(const float* p) { F32 r; std::memcpy(r.v, p, sizeof r.v); return r; }
    static void storef(float* p, F32 a) { std::memcpy(p, a.v, sizeof a.v); }
    static F32 load_f16(const uint16_t* p) { F32 r; for (int k = 0; k < 8; ++k) r.v[k] = fp16_to_f32(p[k]); return r; }
    static F32 load_bf16(const uint16_t* p) { F32 r; for (int k = 0; k < 8; ++k) r.v[k] = bf16_to_f32(p[k]); return r; }

    // ---- quads: four rows side by side (lane index = 16 * slot + lane within the slot) ----
    struct I8Q { uint8_t v[64]; };  // raw bytes: nibbles (Q4_0) or signed quants (Q8_0), as the dot reads them
    struct I32Q { int32_t v[16]; };
    struct F32Q { float v[16]; };

    static I8Q load_i8q(const void* p) { I8Q r; std::memcpy(r.v, p, 64); return r; }
    static I8Q nibbles_lo_q(I8Q x) { for (auto& v : x.v) v &= 15; return x; }
    static I8Q nibbles_hi_q(I8Q x) { for (auto& v : x.v) v >>= 4; return x; }
    // The same 16 bytes in every slot.
    static I8Q bcast16_q(const int8_t* p) { I8Q r; for (int s = 0; s < 4; ++s) std::memcpy(r.v + 16 * s, p, 16); return r; }
    // Every slot's lane k = a[k] + a[k + 4].
    static I32Q fold_halves_q(I32 a) {
        I32Q r;
        for (int s = 0; s < 4; ++s)
            for (int k = 0; k < 4; ++k) r.v[4 * s + k] = static_cast<int32_t>(static_cast<uint32_t>(a.v[k]) + static_cast<uint32_t>(a.v[k + 4]));
        return r;
    }
    // Unsigned w (every lane below 128 here) times signed a, four products per int32 lane, added to base.
    static I32Q dot_u8_add_q(I32Q base, I8Q w, I8Q a) {
        for (int k = 0; k < 16; ++k)
            for (int j = 4 * k; j < 4 * k + 4; ++j) base.v[k] += static_cast<int32_t>(w.v[j]) * static_cast<int8_t>(a.v[j]);
        return base;
    }
    // Signed w times signed a, the same lanes.
    static I32Q dot_i8_add_q(I32Q base, I8Q w, I8Q a) {
        for (int k = 0; k < 16; ++k)
            for (int j = 4 * k; j < 4 * k + 4; ++j) base.v[k] += static_cast<int8_t>(w.v[j]) * static_cast<int8_t>(a.v[j]);
        return base;
    }
    static I32Q zero_i32q() { I32Q r{}; return r; }
    static F32Q to_f32q(I32Q a) { F32Q r; for (int k = 0; k < 16; ++k) r.v[k] = static_cast<float>(a.v[k]); return r; }
    static F32Q fzero_q() { F32Q r{}; return r; }
    static F32Q fmadd_q(F32Q a, F32Q b, F32Q c) { for (int k = 0; k < 16; ++k) c.v[k] += a.v[k] * b.v[k]; return c; }
    // Slot s, all four lanes = x[kFirst + s].
    template <int kFirst>
    static F32Q spread_slots(F32 x) { F32Q r; for (int k = 0; k < 16; ++k) r.v[k] = x.v[kFirst + k / 4]; return r; }
    static void store_f32q(float* p, F32Q a) { std::memcpy(p, a.v, sizeof a.v); }
};

}  // namespace
}  // namespace apr_cpu
