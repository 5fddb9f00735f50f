// Vector operations for the AVX-512 path (F + BW + VL + VNNI): the AVX2 set with the integer
// dot products done by VNNI (vpdpbusd, no int16 intermediate) and bit expansion done with
// AVX-512BW mask registers. Vectors stay 256 bits wide (one 32-element block per register),
// which keeps the kernels identical to the other paths; decode is memory-bound anyway.
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
};

}  // namespace
}  // namespace apr_cpu
