// Vector operations for the AVX2 + FMA + F16C path (same lane semantics as simd_scalar.hpp).
// Include only from a file compiled with -mavx2 -mfma -mf16c.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace apr_cpu {
namespace {  // internal linkage: each ISA's operations stay inside the one file built for it

struct Avx2Ops {
    using I8 = __m256i;
    using I32 = __m256i;
    using F32 = __m256;

    static I8 load_i8(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
    static void store_i8(int8_t* p, I8 x) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), x); }
    static I8 nibbles16(const uint8_t* p) {
        // The 16 bytes in both halves; the upper half shifted down 4 bits, then both masked.
        const __m256i x = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return _mm256_and_si256(_mm256_srlv_epi64(x, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(15));
    }
    static I8 nibbles_lo(const uint8_t* p) { return _mm256_and_si256(load_i8(p), _mm256_set1_epi8(15)); }
    static I8 nibbles_hi(const uint8_t* p) {
        return _mm256_and_si256(_mm256_srli_epi16(load_i8(p), 4), _mm256_set1_epi8(15));
    }
    static I8 bits_to_lanes(uint32_t bits, int8_t value) {
        // Byte j gets byte j/8 of `bits`, then is tested against bit j%8.
        const __m256i shuffle = _mm256_setr_epi64x(0x0000000000000000LL, 0x0101010101010101LL,
                                                   0x0202020202020202LL, 0x0303030303030303LL);
        const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
        __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), shuffle);
        v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
        return _mm256_and_si256(v, _mm256_set1_epi8(value));
    }
    static I8 bit_of_bytes(const uint8_t* p, int b, int8_t value) {
        const __m256i bit = _mm256_set1_epi8(static_cast<char>(1u << b));
        const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(load_i8(p), bit), bit);
        return _mm256_and_si256(set, _mm256_set1_epi8(value));
    }
    static I8 field2_of_bytes(const uint8_t* p, int shift) {
        const __m128i s = _mm_cvtsi32_si128(shift);
        const __m256i f = _mm256_and_si256(_mm256_srl_epi16(load_i8(p), s), _mm256_set1_epi8(3));
        return _mm256_slli_epi16(f, 4);  // values <= 48 stay inside their byte
    }
    static I8 splat_i8(int8_t x) { return _mm256_set1_epi8(x); }
    static I8 add_i8(I8 a, I8 b) { return _mm256_add_epi8(a, b); }
    static I8 sub_i8(I8 a, I8 b) { return _mm256_sub_epi8(a, b); }
    static I8 or_i8(I8 a, I8 b) { return _mm256_or_si256(a, b); }

    // maddubs multiplies unsigned by signed bytes: move w's sign onto a. No pair can saturate
    // the int16 sum (|w| <= 128, |a| <= 127).
    static I32 dot_i8(I8 w, I8 a) {
        const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
        return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
    }
    static I32 dot_u8(I8 w, I8 a) { return _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1)); }
    static I32 dot_u8_add(I32 base, I8 w, I8 a) { return _mm256_add_epi32(base, dot_u8(w, a)); }
    static I32 load_i32(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
    static I32 shl_i32(I32 a, int s) { return _mm256_sll_epi32(a, _mm_cvtsi32_si128(s)); }
    static I32 zero_i32() { return _mm256_setzero_si256(); }
    static I32 add_i32(I32 a, I32 b) { return _mm256_add_epi32(a, b); }
    static I32 mul_i32(I32 a, int32_t s) { return _mm256_mullo_epi32(a, _mm256_set1_epi32(s)); }
    static I32 mul_i32_halves(I32 a, int32_t lo, int32_t hi) {
        return _mm256_mullo_epi32(a, _mm256_setr_epi32(lo, lo, lo, lo, hi, hi, hi, hi));
    }

    static F32 to_f32(I32 a) { return _mm256_cvtepi32_ps(a); }
    static F32 fzero() { return _mm256_setzero_ps(); }
    static F32 fsplat(float x) { return _mm256_set1_ps(x); }
    static F32 fadd(F32 a, F32 b) { return _mm256_add_ps(a, b); }
    static F32 fmul(F32 a, F32 b) { return _mm256_mul_ps(a, b); }
    static F32 fmadd(F32 a, F32 b, F32 c) { return _mm256_fmadd_ps(a, b, c); }
    static float hsum(F32 a) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }
    static float half(uint16_t h) { return _cvtsh_ss(h); }  // F16C: one instruction
    static F32 loadf(const float* p) { return _mm256_loadu_ps(p); }
    static void storef(float* p, F32 a) { _mm256_storeu_ps(p, a); }
    static F32 load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
    static F32 load_bf16(const uint16_t* p) {
        const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
    }

    // ---- quads (simd_scalar.hpp): two 256-bit registers, slots 0-1 in `a`, slots 2-3 in `b` ----
    struct I8Q { __m256i a, b; };
    using I32Q = I8Q;
    struct F32Q { __m256 a, b; };

    static I8Q load_i8q(const void* p) { return {load_i8(p), load_i8(static_cast<const uint8_t*>(p) + 32)}; }
    static I8Q nibbles_lo_q(I8Q x) {
        const __m256i m = _mm256_set1_epi8(15);
        return {_mm256_and_si256(x.a, m), _mm256_and_si256(x.b, m)};
    }
    static I8Q nibbles_hi_q(I8Q x) {
        const __m256i m = _mm256_set1_epi8(15);
        return {_mm256_and_si256(_mm256_srli_epi16(x.a, 4), m), _mm256_and_si256(_mm256_srli_epi16(x.b, 4), m)};
    }
    static I8Q bcast16_q(const int8_t* p) {
        const __m256i x = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return {x, x};
    }
    static I32Q fold_halves_q(I32 a) {
        const __m256i x = _mm256_broadcastsi128_si256(_mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1)));
        return {x, x};
    }
    static I32Q dot_u8_add_q(I32Q base, I8Q w, I8Q a) { return {dot_u8_add(base.a, w.a, a.a), dot_u8_add(base.b, w.b, a.b)}; }
    static I32Q dot_i8_add_q(I32Q base, I8Q w, I8Q a) {
        return {_mm256_add_epi32(base.a, dot_i8(w.a, a.a)), _mm256_add_epi32(base.b, dot_i8(w.b, a.b))};
    }
    static I32Q zero_i32q() { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
    static F32Q to_f32q(I32Q a) { return {_mm256_cvtepi32_ps(a.a), _mm256_cvtepi32_ps(a.b)}; }
    static F32Q fzero_q() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
    static F32Q fmadd_q(F32Q a, F32Q b, F32Q c) { return {_mm256_fmadd_ps(a.a, b.a, c.a), _mm256_fmadd_ps(a.b, b.b, c.b)}; }
    template <int kFirst>
    static F32Q spread_slots(F32 x) {
        constexpr int f = kFirst;
        return {_mm256_permutevar8x32_ps(x, _mm256_setr_epi32(f, f, f, f, f + 1, f + 1, f + 1, f + 1)),
                _mm256_permutevar8x32_ps(x, _mm256_setr_epi32(f + 2, f + 2, f + 2, f + 2, f + 3, f + 3, f + 3, f + 3))};
    }
    static void store_f32q(float* p, F32Q a) { _mm256_storeu_ps(p, a.a); _mm256_storeu_ps(p + 8, a.b); }
};

}  // namespace
}  // namespace apr_cpu
