// Vector operations for the AVX-512 path (F + BW + VL + VNNI): the AVX2 set with the integer
// dot products done by VNNI (vpdpbusd, no int16 intermediate) and bit expansion done with
// AVX-512BW mask registers. The block vectors stay 256 bits wide (one 32-element block per
// register), which keeps those kernels identical to the other paths; the quads of the
// row-grouped kernels are one 512-bit register each (four rows per instruction), because
// decode's dot products are otherwise bound by instruction count, not by memory.
// Include only from a file compiled with the AVX-512 flags.
#pragma once

#include "simd_avx2.hpp"

namespace apr_cpu {
namespace {

struct Avx512Ops : Avx2Ops {
    static I8 bits_to_lanes(uint32_t bits, int8_t value) {
        return _mm256_maskz_mov_epi8(static_cast<__mmask32>(bits), _mm256_set1_epi8(value));
    }
    static I8 bit_of_bytes(const uint8_t* p, int b, int8_t value) {
        const __mmask32 set = _mm256_test_epi8_mask(load_i8(p), _mm256_set1_epi8(static_cast<char>(1u << b)));
        return _mm256_maskz_mov_epi8(set, _mm256_set1_epi8(value));
    }
    static I32 dot_i8(I8 w, I8 a) {
        return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w), _mm256_sign_epi8(a, w));
    }
    static I32 dot_u8(I8 w, I8 a) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, a); }
    static I32 dot_u8_add(I32 base, I8 w, I8 a) { return _mm256_dpbusd_epi32(base, w, a); }

    // ---- quads (simd_scalar.hpp): one 512-bit register, slot s in 128-bit lane s ----
    using I8Q = __m512i;
    using I32Q = __m512i;
    using F32Q = __m512;

    static I8Q load_i8q(const void* p) { return _mm512_loadu_si512(p); }
    static I8Q nibbles_lo_q(I8Q x) { return _mm512_and_si512(x, _mm512_set1_epi8(15)); }
    static I8Q nibbles_hi_q(I8Q x) { return _mm512_and_si512(_mm512_srli_epi16(x, 4), _mm512_set1_epi8(15)); }
    static I8Q bcast16_q(const int8_t* p) { return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
    static I32Q fold_halves_q(I32 a) {
        return _mm512_broadcast_i32x4(_mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1)));
    }
    static I32Q dot_u8_add_q(I32Q base, I8Q w, I8Q a) { return _mm512_dpbusd_epi32(base, w, a); }
    // Signed by signed: vpdpbusd takes |w| as unsigned (|-128| = 128 reads right) and a with
    // w's sign moved onto it (AVX-512 has no vpsignb: negate a under w's sign mask). |w| and
    // the mask depend on w only, so they are formed once per weight quad for all NC columns.
    static I32Q dot_i8_add_q(I32Q base, I8Q w, I8Q a) {
        const __m512i signed_a = _mm512_mask_sub_epi8(a, _mm512_movepi8_mask(w), _mm512_setzero_si512(), a);
        return _mm512_dpbusd_epi32(base, _mm512_abs_epi8(w), signed_a);
    }
    static I32Q zero_i32q() { return _mm512_setzero_si512(); }
    static F32Q to_f32q(I32Q a) { return _mm512_cvtepi32_ps(a); }
    static F32Q fzero_q() { return _mm512_setzero_ps(); }
    static F32Q fmadd_q(F32Q a, F32Q b, F32Q c) { return _mm512_fmadd_ps(a, b, c); }
    template <int kFirst>
    static F32Q spread_slots(F32 x) {
        constexpr int f = kFirst;
        const __m512i idx = _mm512_setr_epi32(f, f, f, f, f + 1, f + 1, f + 1, f + 1, f + 2, f + 2, f + 2, f + 2, f + 3, f + 3, f + 3, f + 3);
        return _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(x));
    }
    static void store_f32q(float* p, F32Q a) { _mm512_storeu_ps(p, a); }
};

}  // namespace
}  // namespace apr_cpu
