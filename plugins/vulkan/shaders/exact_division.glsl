// Correctly rounded f32 division (round to nearest, ties to even), by integer long division.
// Vulkan lets OpFDiv be off by 2.5 ulp (GPUs divide through an approximate reciprocal), but the
// activation quantizers must reproduce the CPU's scales bit for bit: a scale one ulp off moves
// values that sit on a rounding boundary to the neighbouring integer.

// The 24-bit significand of a positive finite float (subnormals normalized) and the exponent e
// such that the value is significand * 2^(e - 150).
uint significand24(uint bits, out int e) {
    uint m = bits & 0x7FFFFFu;
    int ex = int(bits >> 23);
    if (ex == 0) {
        int s = 23 - findMSB(m);
        m <<= uint(s);
        ex = 1 - s;
    } else {
        m |= 0x800000u;
    }
    e = ex;
    return m;
}

// a / b for finite a >= 0 and finite b > 0.
float div_rn(float a, float b) {
    uint ua = floatBitsToUint(a), ub = floatBitsToUint(b);
    if ((ua & 0x7FFFFFFFu) == 0u) return 0.0;
    int ea, eb;
    uint ma = significand24(ua, ea), mb = significand24(ub, eb);
    int e = ea - eb;  // a / b = (ma / mb) * 2^e
    if (ma < mb) {    // bring ma / mb into [1, 2)
        ma <<= 1;
        e -= 1;
    }
    // q = floor(ma / mb * 2^25): 24 significant bits, a round bit and one more; r != 0 means
    // the bits after those are not all zero.
    uint q = 0u, r = ma;
    for (int i = 0; i < 26; ++i) {
        q <<= 1;
        if (r >= mb) {
            r -= mb;
            q |= 1u;
        }
        r <<= 1;
    }
    int biased = e + 127;
    if (biased >= 255) return uintBitsToFloat(0x7F800000u);
    // A normal result keeps 24 bits of q; a subnormal one fewer, the further below 2^-126.
    // Adding the rounded significand (implicit bit included) to (biased - 1) << 23 sets the
    // exponent field, and a carry out of the significand bumps it correctly.
    uint shift = biased >= 1 ? 2u : uint(3 - biased);
    if (shift > 26u) return 0.0;  // below half the smallest subnormal
    uint base = biased >= 1 ? uint(biased - 1) << 23 : 0u;
    uint mant = q >> shift;
    uint rem = q & ((1u << shift) - 1u);
    uint halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (r != 0u || (mant & 1u) != 0u))) mant += 1u;
    return uintBitsToFloat(base + mant);
}
