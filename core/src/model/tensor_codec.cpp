// The block layouts follow ggml (ggml-common.h / ggml-quants.c): every block starts or ends with
// fp16 scales, quants are packed low nibble first, and within a 32-element block of the legacy
// formats element j sits in the low nibble of byte j and element j+16 in its high nibble.
#include "model/tensor_codec.hpp"

// Same bits on every machine: no fused multiply-adds that one compiler/target would use and
// another would not (GCC in ISO C++ mode never contracts; clang needs to be told).
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#include <apr/backend.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "model/ggml_type.hpp"

namespace apr {

// ---- fp16 / bf16 -------------------------------------------------------------------------

float fp16_to_f32(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);  // inf / nan (payload kept)
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);  // rebias 15 -> 127
    } else if (mant == 0) {
        bits = sign;
    } else {
        // Subnormal: shift the mantissa up until its leading one becomes the implicit bit.
        int e = -1;
        do {
            ++e;
            mant <<= 1;
        } while ((mant & 0x400u) == 0);
        bits = sign | uint32_t(112 - e) << 23 | ((mant & 0x3ffu) << 13);
    }
    return std::bit_cast<float>(bits);
}

uint16_t f32_to_fp16(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
    const uint32_t abs = x & 0x7fffffffu;
    if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // nan -> quiet nan
    if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (abs < 0x38800000u) {
        // Result is subnormal (or zero) in fp16: value / 2^-24, rounded to nearest even.
        if (abs < 0x33000000u) return sign;  // below half the smallest subnormal
        const uint32_t exp = abs >> 23;
        const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126 - exp;  // value = mant * 2^(exp-150); in units of 2^-24: mant >> (126-exp)
        uint32_t q = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1);
        const uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) ++q;
        return uint16_t(sign | q);
    }
    // Normal: rebias the exponent and round the 13 dropped mantissa bits to nearest even; a
    // carry out of the mantissa correctly bumps the exponent.
    uint32_t r = abs - 0x38000000u;  // exponent 127 -> 15
    r += 0x0fffu + ((r >> 13) & 1u);
    return uint16_t(sign | (r >> 13));
}

float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }

uint16_t f32_to_bf16(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40u);  // nan -> quiet nan
    return uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// ---- sizes -------------------------------------------------------------------------------

namespace {

GgmlTypeTraits traits_of(uint32_t type) {
    const auto t = ggml_type_traits(type);
    if (!t) throw std::invalid_argument("tensor type " + ggml_type_name(type) + " is not supported");
    return *t;
}

GgmlTypeTraits checked_traits(uint32_t type, int64_t n) {
    const GgmlTypeTraits t = traits_of(type);
    if (n < 0 || n % t.block_size != 0)
        throw std::invalid_argument("a row of " + std::to_string(n) + " elements is not a whole number of " + t.name +
                                    " blocks of " + std::to_string(t.block_size));
    return t;
}

constexpr int kQK = 32;    // elements per block of the legacy formats
constexpr int kQK_K = 256; // elements per super-block of the K formats

uint16_t load_u16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}
void store_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
float load_fp16(const uint8_t* p) { return fp16_to_f32(load_u16(p)); }

// Round to nearest, ties to even, as ggml's SIMD quantizers do: adding 1.5 * 2^23 leaves the
// rounded integer in the low mantissa bits (valid for |x| < 2^22; callers' values are far
// smaller, and anything larger is clamped first so that the result stays saturated).
int round_int(float x) {
    x = std::clamp(x, -4194303.0f, 4194303.0f);
    const float shifted = x + 12582912.0f;
    return int(std::bit_cast<uint32_t>(shifted) & 0x007fffffu) - 0x00400000;
}

// ---- dequantization ----------------------------------------------------------------------

// Q4_0: d(fp16) qs[16]; x = d * (q - 8)
void dequant_q4_0(const uint8_t* __restrict b, float* __restrict y) {
    const float d = load_fp16(b);
    const uint8_t* qs = b + 2;
    for (int j = 0; j < 16; ++j) {
        y[j] = d * float(int(qs[j] & 0x0f) - 8);
        y[j + 16] = d * float(int(qs[j] >> 4) - 8);
    }
}

// Q4_1: d(fp16) m(fp16) qs[16]; x = d * q + m
void dequant_q4_1(const uint8_t* __restrict b, float* __restrict y) {
    const float d = load_fp16(b), m = load_fp16(b + 2);
    const uint8_t* qs = b + 4;
    for (int j = 0; j < 16; ++j) {
        y[j] = d * float(qs[j] & 0x0f) + m;
        y[j + 16] = d * float(qs[j] >> 4) + m;
    }
}

// The fifth bit of element j of a Q5 block is bit j of the little-endian 32-bit qh.
uint32_t load_qh(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// Q5_0: d(fp16) qh[4] qs[16]; x = d * (q - 16)
void dequant_q5_0(const uint8_t* __restrict b, float* __restrict y) {
    const float d = load_fp16(b);
    const uint32_t qh = load_qh(b + 2);
    const uint8_t* qs = b + 6;
    for (int j = 0; j < 16; ++j) {
        const int lo = int((qs[j] & 0x0f) | (((qh >> j) & 1u) << 4));
        const int hi = int((qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4));
        y[j] = d * float(lo - 16);
        y[j + 16] = d * float(hi - 16);
    }
}

// Q5_1: d(fp16) m(fp16) qh[4] qs[16]; x = d * q + m
void dequant_q5_1(const uint8_t* __restrict b, float* __restrict y) {
    const float d = load_fp16(b), m = load_fp16(b + 2);
    const uint32_t qh = load_qh(b + 4);
    const uint8_t* qs = b + 8;
    for (int j = 0; j < 16; ++j) {
        const uint32_t lo = (qs[j] & 0x0f) | (((qh >> j) & 1u) << 4);
        const uint32_t hi = (qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4);
        y[j] = d * float(lo) + m;
        y[j + 16] = d * float(hi) + m;
    }
}

// Q8_0: d(fp16) qs[32] (int8); x = d * q
void dequant_q8_0(const uint8_t* __restrict b, float* __restrict y) {
    const float d = load_fp16(b);
    for (int j = 0; j < kQK; ++j) y[j] = d * float(int8_t(b[2 + j]));
}

// Q4_K/Q5_K pack eight 6-bit scales and eight 6-bit mins into 12 bytes: bytes 0-3 hold the low
// 6 bits of scales 0-3 (top 2 bits: high bits of scales 4-7), bytes 4-7 the same for mins,
// bytes 8-11 the low nibbles of scales 4-7 (low half) and mins 4-7 (high half).
void unpack_scale_min(int j, const uint8_t* s, uint8_t& sc, uint8_t& m) {
    if (j < 4) {
        sc = s[j] & 63;
        m = s[j + 4] & 63;
    } else {
        sc = uint8_t((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4));
        m = uint8_t((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

void pack_scale_min(const uint8_t* sc, const uint8_t* m, uint8_t* s) {
    std::memset(s, 0, 12);
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            s[j] |= sc[j];
            s[j + 4] |= m[j];
        } else {
            s[j + 4] = uint8_t((sc[j] & 0x0f) | ((m[j] & 0x0f) << 4));
            s[j - 4] |= uint8_t((sc[j] >> 4) << 6);
            s[j] |= uint8_t((m[j] >> 4) << 6);
        }
    }
}

// Q4_K: d(fp16) dmin(fp16) scales[12] qs[128]. Eight sub-blocks of 32: x = d*sc*q - dmin*m.
// Each 32 bytes of qs hold two consecutive sub-blocks: low nibbles the first, high the second.
void dequant_q4_k(const uint8_t* __restrict b, float* __restrict y) {
    const float d = load_fp16(b), dmin = load_fp16(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qs = b + 16;
    for (int pair = 0; pair < 4; ++pair) {
        uint8_t sc0, m0, sc1, m1;
        unpack_scale_min(2 * pair, scales, sc0, m0);
        unpack_scale_min(2 * pair + 1, scales, sc1, m1);
        const float d0 = d * sc0, min0 = dmin * m0, d1 = d * sc1, min1 = dmin * m1;
        for (int l = 0; l < 32; ++l) y[l] = d0 * float(qs[l] & 0x0f) - min0;
        for (int l = 0; l < 32; ++l) y[32 + l] = d1 * float(qs[l] >> 4) - min1;
        qs += 32;
        y += 64;
    }
}

// Q5_K: d dmin scales[12] qh[32] qs[128]. As Q4_K, plus a fifth bit per element: for sub-block
// pair p, bit 2p of qh[l] belongs to element l of the first sub-block, bit 2p+1 to the second.
void dequant_q5_k(const uint8_t* __restrict b, float* __restrict y) {
    const float d = load_fp16(b), dmin = load_fp16(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qh = b + 16;
    const uint8_t* qs = b + 48;
    for (int pair = 0; pair < 4; ++pair) {
        uint8_t sc0, m0, sc1, m1;
        unpack_scale_min(2 * pair, scales, sc0, m0);
        unpack_scale_min(2 * pair + 1, scales, sc1, m1);
        const float d0 = d * sc0, min0 = dmin * m0, d1 = d * sc1, min1 = dmin * m1;
        for (int l = 0; l < 32; ++l) {
            const int hi0 = (qh[l] >> (2 * pair)) & 1, hi1 = (qh[l] >> (2 * pair + 1)) & 1;
            y[l] = d0 * float((qs[l] & 0x0f) | (hi0 << 4)) - min0;
            y[32 + l] = d1 * float((qs[l] >> 4) | (hi1 << 4)) - min1;
        }
        qs += 32;
        y += 64;
    }
}

// Q6_K: ql[128] qh[64] scales[16] (int8) d(fp16). Sixteen sub-blocks of 16: x = d*sc*(q - 32),
// q 6 bits. Each half (128 elements) uses 64 bytes of ql and 32 of qh: element l (l < 32) of the
// four quarters takes ql[l] low, ql[l+32] low, ql[l] high, ql[l+32] high nibbles and bit pairs
// 0-1, 2-3, 4-5, 6-7 of qh[l].
void dequant_q6_k(const uint8_t* __restrict b, float* __restrict y) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = load_fp16(b + 208);
    for (int half = 0; half < 2; ++half) {
        for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = int((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = int((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * float(sc[is + 0]) * float(q1);
            y[l + 32] = d * float(sc[is + 2]) * float(q2);
            y[l + 64] = d * float(sc[is + 4]) * float(q3);
            y[l + 96] = d * float(sc[is + 6]) * float(q4);
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

// ---- quantization ------------------------------------------------------------------------

// The signed value of largest magnitude (ggml's symmetric formats map it to the extreme level).
float signed_absmax(const float* x, int n) {
    float amax = 0, max = 0;
    for (int j = 0; j < n; ++j)
        if (std::fabs(x[j]) > amax) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    return max;
}

void quant_q8_0(const float* x, uint8_t* b) {
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    // As ggml quantizes activations for Q8_0 dot products: d = amax/127 stored as fp16, and
    // q = round_half_even(x * 127/amax) with the unrounded ratio.
    const float d = amax / 127.0f;
    const float id = amax != 0 ? 127.0f / amax : 0.0f;
    store_u16(b, f32_to_fp16(d));
    for (int j = 0; j < kQK; ++j) b[2 + j] = uint8_t(int8_t(std::clamp(round_int(x[j] * id), -127, 127)));
}

// Symmetric 4/5-bit: the largest-magnitude value maps to level -2^(bits-1) exactly.
void quant_symmetric(const float* x, int bits, float& d, uint8_t* q) {
    const int half = 1 << (bits - 1);
    const float max = signed_absmax(x, kQK);
    d = max / float(-half);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < kQK; ++j) q[j] = uint8_t(std::clamp(round_int(x[j] * id) + half, 0, 2 * half - 1));
}

// Asymmetric 4/5-bit: [min, max] spread over all levels.
void quant_affine(const float* x, int bits, float& d, float& m, uint8_t* q) {
    const int top = (1 << bits) - 1;
    float mn = x[0], mx = x[0];
    for (int j = 1; j < kQK; ++j) {
        mn = std::min(mn, x[j]);
        mx = std::max(mx, x[j]);
    }
    d = (mx - mn) / float(top);
    m = mn;
    // Quantize against the stored (fp16-rounded) parameters so the rounding error is minimal.
    const float ds = fp16_to_f32(f32_to_fp16(d)), ms = fp16_to_f32(f32_to_fp16(m));
    const float id = ds != 0 ? 1.0f / ds : 0.0f;
    for (int j = 0; j < kQK; ++j) q[j] = uint8_t(std::clamp(round_int((x[j] - ms) * id), 0, top));
}

void quant_q4_0(const float* x, uint8_t* b) {
    float d;
    uint8_t q[kQK];
    quant_symmetric(x, 4, d, q);
    store_u16(b, f32_to_fp16(d));
    for (int j = 0; j < 16; ++j) b[2 + j] = uint8_t(q[j] | (q[j + 16] << 4));
}

void quant_q4_1(const float* x, uint8_t* b) {
    float d, m;
    uint8_t q[kQK];
    quant_affine(x, 4, d, m, q);
    store_u16(b, f32_to_fp16(d));
    store_u16(b + 2, f32_to_fp16(m));
    for (int j = 0; j < 16; ++j) b[4 + j] = uint8_t(q[j] | (q[j + 16] << 4));
}

void pack_q5(const uint8_t* q, uint8_t* qh_out, uint8_t* qs) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        qs[j] = uint8_t((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
        qh |= uint32_t(q[j] >> 4) << j;
        qh |= uint32_t(q[j + 16] >> 4) << (j + 16);
    }
    std::memcpy(qh_out, &qh, 4);
}

void quant_q5_0(const float* x, uint8_t* b) {
    float d;
    uint8_t q[kQK];
    quant_symmetric(x, 5, d, q);
    store_u16(b, f32_to_fp16(d));
    pack_q5(q, b + 2, b + 6);
}

void quant_q5_1(const float* x, uint8_t* b) {
    float d, m;
    uint8_t q[kQK];
    quant_affine(x, 5, d, m, q);
    store_u16(b, f32_to_fp16(d));
    store_u16(b + 2, f32_to_fp16(m));
    pack_q5(q, b + 4, b + 8);
}

// Q4_K / Q5_K: per 32-element sub-block an affine range [min<=0, max]; the sub-block scales and
// (negated) mins are themselves quantized to 6 bits against the super-block's d and dmin. The
// quants are then computed against the scales as stored, so the error is just the rounding.
void quant_k_affine(const float* x, int bits, uint8_t* d_out, uint8_t* scales12, uint8_t* q) {
    const int top = (1 << bits) - 1;
    float sub_scale[8], sub_min[8];  // sub_min is -min >= 0
    float max_scale = 0, max_min = 0;
    for (int s = 0; s < 8; ++s) {
        const float* xs = x + 32 * s;
        float mn = xs[0], mx = xs[0];
        for (int l = 1; l < 32; ++l) {
            mn = std::min(mn, xs[l]);
            mx = std::max(mx, xs[l]);
        }
        mn = std::min(mn, 0.0f);  // the format subtracts a non-negative min
        mx = std::max(mx, mn);
        sub_scale[s] = (mx - mn) / float(top);
        sub_min[s] = -mn;
        max_scale = std::max(max_scale, sub_scale[s]);
        max_min = std::max(max_min, sub_min[s]);
    }
    const float d = max_scale / 63.0f, dmin = max_min / 63.0f;
    store_u16(d_out, f32_to_fp16(d));
    store_u16(d_out + 2, f32_to_fp16(dmin));
    const float ds = fp16_to_f32(f32_to_fp16(d)), dmins = fp16_to_f32(f32_to_fp16(dmin));
    uint8_t ls[8], lm[8];
    for (int s = 0; s < 8; ++s) {
        // Round the scale up, not to nearest, so that the sub-block's range stays covered.
        ls[s] = uint8_t(ds > 0 ? std::clamp(int(std::ceil(sub_scale[s] / ds - 1e-4f)), 0, 63) : 0);
        lm[s] = uint8_t(dmins > 0 ? std::clamp(round_int(sub_min[s] / dmins), 0, 63) : 0);
    }
    pack_scale_min(ls, lm, scales12);
    for (int s = 0; s < 8; ++s) {
        const float step = ds * ls[s], off = dmins * lm[s];
        const float inv = step != 0 ? 1.0f / step : 0.0f;
        for (int l = 0; l < 32; ++l) q[32 * s + l] = uint8_t(std::clamp(round_int((x[32 * s + l] + off) * inv), 0, top));
    }
}

void quant_q4_k(const float* x, uint8_t* b) {
    uint8_t q[kQK_K];
    quant_k_affine(x, 4, b, b + 4, q);
    uint8_t* qs = b + 16;
    for (int pair = 0; pair < 4; ++pair)
        for (int l = 0; l < 32; ++l) qs[32 * pair + l] = uint8_t(q[64 * pair + l] | (q[64 * pair + 32 + l] << 4));
}

void quant_q5_k(const float* x, uint8_t* b) {
    uint8_t q[kQK_K];
    quant_k_affine(x, 5, b, b + 4, q);
    uint8_t* qh = b + 16;
    uint8_t* qs = b + 48;
    std::memset(qh, 0, 32);
    for (int pair = 0; pair < 4; ++pair)
        for (int l = 0; l < 32; ++l) {
            const uint8_t a = q[64 * pair + l], c = q[64 * pair + 32 + l];
            qs[32 * pair + l] = uint8_t((a & 0x0f) | ((c & 0x0f) << 4));
            qh[l] |= uint8_t(((a >> 4) << (2 * pair)) | ((c >> 4) << (2 * pair + 1)));
        }
}

// Q6_K: per 16-element sub-block a symmetric scale (largest magnitude -> level -32), the
// sixteen scales quantized to int8 against d.
void quant_q6_k(const float* x, uint8_t* b) {
    float sub_scale[16];
    float max_scale = 0, amax = 0;
    for (int s = 0; s < 16; ++s) {
        sub_scale[s] = signed_absmax(x + 16 * s, 16) / -32.0f;
        if (std::fabs(sub_scale[s]) > amax) {
            amax = std::fabs(sub_scale[s]);
            max_scale = sub_scale[s];
        }
    }
    uint8_t* ql = b;
    uint8_t* qh = b + 128;
    int8_t* sc = reinterpret_cast<int8_t*>(b + 192);
    const float iscale = max_scale != 0 ? -128.0f / max_scale : 0.0f;
    const float d = iscale != 0 ? 1.0f / iscale : 0.0f;
    store_u16(b + 208, f32_to_fp16(d));
    const float ds = fp16_to_f32(f32_to_fp16(d));
    uint8_t L[kQK_K];
    for (int s = 0; s < 16; ++s) {
        sc[s] = int8_t(std::clamp(round_int(iscale * sub_scale[s]), -128, 127));
        const float step = ds * float(sc[s]);
        const float inv = step != 0 ? 1.0f / step : 0.0f;
        for (int l = 0; l < 16; ++l) L[16 * s + l] = uint8_t(std::clamp(round_int(x[16 * s + l] * inv), -32, 31) + 32);
    }
    std::memset(qh, 0, 64);
    for (int half = 0; half < 2; ++half) {
        const uint8_t* Lh = L + 128 * half;
        for (int l = 0; l < 32; ++l) {
            ql[l] = uint8_t((Lh[l] & 0x0f) | ((Lh[l + 64] & 0x0f) << 4));
            ql[l + 32] = uint8_t((Lh[l + 32] & 0x0f) | ((Lh[l + 96] & 0x0f) << 4));
            qh[l] = uint8_t((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
        }
        ql += 64;
        qh += 32;
    }
}

using QuantFn = void (*)(const float*, uint8_t*);

// The block decoder is a template argument, so it is inlined into the loop (and vectorized:
// its pointers are __restrict), instead of an indirect call per block.
template <void (*Decode)(const uint8_t* __restrict, float* __restrict)>
void dequantize_blocks(const uint8_t* src, float* dst, int64_t n_blocks, const GgmlTypeTraits& t) {
    for (int64_t i = 0; i < n_blocks; ++i) Decode(src + i * t.type_size, dst + i * t.block_size);
}

}  // namespace

size_t row_size(uint32_t type, int64_t n) {
    const GgmlTypeTraits t = checked_traits(type, n);
    return size_t(n / t.block_size) * t.type_size;
}

void dequantize_row(uint32_t type, const void* src, float* dst, int64_t n) {
    const GgmlTypeTraits t = checked_traits(type, n);
    const auto* s = static_cast<const uint8_t*>(src);
    switch (type) {
        case APR_TYPE_F32: std::memcpy(dst, src, size_t(n) * 4); return;
        case APR_TYPE_F16:
            for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(load_u16(s + 2 * i));
            return;
        case APR_TYPE_BF16:
            for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(s + 2 * i));
            return;
        default: break;
    }
    const int64_t n_blocks = n / t.block_size;
    switch (type) {
        case APR_TYPE_Q4_0: return dequantize_blocks<dequant_q4_0>(s, dst, n_blocks, t);
        case APR_TYPE_Q4_1: return dequantize_blocks<dequant_q4_1>(s, dst, n_blocks, t);
        case APR_TYPE_Q5_0: return dequantize_blocks<dequant_q5_0>(s, dst, n_blocks, t);
        case APR_TYPE_Q5_1: return dequantize_blocks<dequant_q5_1>(s, dst, n_blocks, t);
        case APR_TYPE_Q8_0: return dequantize_blocks<dequant_q8_0>(s, dst, n_blocks, t);
        case APR_TYPE_Q4_K: return dequantize_blocks<dequant_q4_k>(s, dst, n_blocks, t);
        case APR_TYPE_Q5_K: return dequantize_blocks<dequant_q5_k>(s, dst, n_blocks, t);
        case APR_TYPE_Q6_K: return dequantize_blocks<dequant_q6_k>(s, dst, n_blocks, t);
        default: throw std::invalid_argument("no dequantizer for " + ggml_type_name(type));
    }
}

void quantize_row(uint32_t type, const float* src, void* dst, int64_t n) {
    const GgmlTypeTraits t = checked_traits(type, n);
    auto* d = static_cast<uint8_t*>(dst);
    switch (type) {
        case APR_TYPE_F32: std::memcpy(dst, src, size_t(n) * 4); return;
        case APR_TYPE_F16:
            for (int64_t i = 0; i < n; ++i) store_u16(d + 2 * i, f32_to_fp16(src[i]));
            return;
        case APR_TYPE_BF16:
            for (int64_t i = 0; i < n; ++i) store_u16(d + 2 * i, f32_to_bf16(src[i]));
            return;
        default: break;
    }
    QuantFn fn = nullptr;
    switch (type) {
        case APR_TYPE_Q4_0: fn = quant_q4_0; break;
        case APR_TYPE_Q4_1: fn = quant_q4_1; break;
        case APR_TYPE_Q5_0: fn = quant_q5_0; break;
        case APR_TYPE_Q5_1: fn = quant_q5_1; break;
        case APR_TYPE_Q8_0: fn = quant_q8_0; break;
        case APR_TYPE_Q4_K: fn = quant_q4_k; break;
        case APR_TYPE_Q5_K: fn = quant_q5_k; break;
        case APR_TYPE_Q6_K: fn = quant_q6_k; break;
        default: throw std::invalid_argument("no quantizer for " + ggml_type_name(type));
    }
    const int64_t n_blocks = n / t.block_size;
    for (int64_t i = 0; i < n_blocks; ++i) fn(src + i * t.block_size, d + i * t.type_size);
}

}  // namespace apr
