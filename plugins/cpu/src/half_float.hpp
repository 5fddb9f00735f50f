// IEEE half (fp16) and bfloat16 conversions, scalar and exact (round to nearest even).
// Everything here has internal linkage (static inline) on purpose: this header is included by
// translation units compiled with different ISA flags, and a shared inline definition could let
// the linker pick an AVX-compiled copy for code that must run on any x86-64.
#pragma once

#include <cstdint>
#include <cstring>

namespace apr_cpu {

static inline uint32_t float_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

static inline float bits_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

static inline float fp16_to_f32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (mant << 13));  // inf / nan
    if (exp == 0) {
        if (mant == 0) return bits_float(sign);
        // Subnormal half: value = mant * 2^-24, exact in f32.
        const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

static inline uint16_t f32_to_fp16(float f) {
    const uint32_t x = float_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t abs = x & 0x7fffffffu;
    if (abs >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (abs < 0x38800000u) {
        // Result is subnormal (or zero) in half: round abs * 2^24 to an integer, ties to even.
        const float v = bits_float(abs) * 16777216.0f;
        const uint32_t m = static_cast<uint32_t>(v);
        const float rem = v - static_cast<float>(m);
        uint32_t r = m;
        if (rem > 0.5f || (rem == 0.5f && (m & 1u))) ++r;
        return static_cast<uint16_t>(sign | r);
    }
    // Normal: rebias the exponent, round the 13 dropped mantissa bits to nearest even.
    uint32_t h = ((abs - 0x38000000u) >> 13);
    const uint32_t rest = abs & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
}

static inline float bf16_to_f32(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

static inline uint16_t f32_to_bf16(float f) {
    const uint32_t x = float_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet nan
    return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// The value a float takes after a round trip through fp16 / bf16 (what ggml's activation
// conversion for F16 / BF16 weights does), kept as f32 so kernels need no second conversion.
static inline float round_to_fp16(float f) { return fp16_to_f32(f32_to_fp16(f)); }
static inline float round_to_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

}  // namespace apr_cpu
