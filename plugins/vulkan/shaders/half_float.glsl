// f32 -> f16 / bf16 -> f32 round trips with IEEE round-to-nearest-even, written with integer
// operations so that the result is bit-exact on every device (packHalf2x16's rounding mode and
// its handling of f16 subnormals are left to the implementation).

// The f16 bit pattern nearest to f (ties to even); overflow gives infinity, NaN a quiet NaN.
uint f32_to_f16_bits(float f) {
    uint x = floatBitsToUint(f);
    uint sign = (x >> 16) & 0x8000u;
    uint a = x & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return sign | 0x7E00u;           // NaN
    if (a >= 0x477FF000u) return sign | 0x7C00u;          // >= 65520 rounds to infinity
    if (a >= 0x38800000u) {                               // f16 normal range (>= 2^-14)
        uint m = a - 0x38000000u;                         // rebias the exponent: 127 -> 15
        return sign | ((m + 0x0FFFu + ((m >> 13) & 1u)) >> 13);
    }
    if (a <= 0x33000000u) return sign;                    // <= 2^-25: rounds to zero (2^-25 ties to even)
    // f16 subnormal: the value in units of 2^-24, from the 24-bit significand.
    uint e = a >> 23;
    uint mant = (a & 0x7FFFFFu) | 0x800000u;
    uint shift = 126u - e;                                // 14 .. 24
    uint h = mant >> shift;
    uint rem = mant & ((1u << shift) - 1u);
    uint halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (h & 1u) != 0u)) h += 1u;  // may carry into the smallest normal
    return sign | h;
}

// The f32 value of an f16 bit pattern (exact: every f16 is an f32).
float f16_bits_to_f32(uint h) {
    uint sign = (h & 0x8000u) << 16;
    uint e = (h >> 10) & 0x1Fu;
    uint m = h & 0x3FFu;
    if (e == 0u) {  // zero or subnormal: m * 2^-24
        float v = float(m) * uintBitsToFloat(0x33800000u);
        return uintBitsToFloat(floatBitsToUint(v) | sign);
    }
    if (e == 31u) return uintBitsToFloat(sign | 0x7F800000u | (m << 13));
    return uintBitsToFloat(sign | ((e + 112u) << 23) | (m << 13));
}

float round_to_f16(float f) { return f16_bits_to_f32(f32_to_f16_bits(f)); }

// f rounded to bf16 (the top 16 bits of an f32), ties to even; NaN stays a (quiet) NaN.
float round_to_bf16(float f) {
    uint x = floatBitsToUint(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return uintBitsToFloat((x | 0x00400000u) & 0xFFFF0000u);
    return uintBitsToFloat(((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16) << 16);
}
