// The plugin's math, written once. Included by each ISA file (kernels_<isa>.cpp) inside an
// anonymous namespace after `using V = <that ISA's operations>;`, so every instantiation has
// internal linkage and is compiled with exactly that file's flags. Needs <algorithm>,
// block_formats.hpp, half_float.hpp and kernels.hpp already included.
//
// Each weight type has one decoder (`decode_*`: a block, or a 32-element sub-block of a
// super-block, as int8 lanes) used both by its dot product and by its dequantization. Dot
// products take NC activation rows at once, so a decoded weight block is reused NC times
// (prefill); every column accumulates in the same order whatever NC is, so a token's result
// does not depend on how many tokens share the call.

using I8 = typename V::I8;
using I32 = typename V::I32;
using F32 = typename V::F32;

// ---- decoders: one per weight type ---------------------------------------------------------

inline I8 decode_q4_0(const BlockQ4_0& b) { return V::sub_i8(V::nibbles16(b.qs), V::splat_i8(8)); }
inline I8 decode_q4_1(const BlockQ4_1& b) { return V::nibbles16(b.qs); }  // 0..15, plus m
inline uint32_t load_u32(const uint8_t* p) { uint32_t u; std::memcpy(&u, p, 4); return u; }
inline I8 decode_q5_0(const BlockQ5_0& b) {
    const I8 q = V::or_i8(V::nibbles16(b.qs), V::bits_to_lanes(load_u32(b.qh), 16));
    return V::sub_i8(q, V::splat_i8(16));
}
inline I8 decode_q5_1(const BlockQ5_1& b) {  // 0..31, plus m
    return V::or_i8(V::nibbles16(b.qs), V::bits_to_lanes(load_u32(b.qh), 16));
}
inline I8 decode_q8_0(const BlockQ8_0& b) { return V::load_i8(b.qs); }

// Q4_K / Q5_K: 6-bit scale and min of sub-block j (0..7), packed in 12 bytes.
inline void k_scale_min(const uint8_t* s, int j, int32_t* sc, int32_t* m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}
// Sub-block j (elements 32j .. 32j+31) as unsigned quants: 0..15 (Q4_K), 0..31 (Q5_K), 0..63 (Q6_K).
inline I8 decode_q4_k(const BlockQ4_K& b, int j) {
    const uint8_t* q = b.qs + 32 * (j / 2);
    return (j & 1) ? V::nibbles_hi(q) : V::nibbles_lo(q);
}
inline I8 decode_q5_k(const BlockQ5_K& b, int j) {
    const uint8_t* q = b.qs + 32 * (j / 2);
    const I8 lo = (j & 1) ? V::nibbles_hi(q) : V::nibbles_lo(q);
    return V::or_i8(lo, V::bit_of_bytes(b.qh, j, 16));
}
// Q6_K: sub-block j lies in half h = j/4 (128 elements), part k = j%4 of it: low nibbles of
// ql[0..31] (k 0), of ql[32..63] (k 1), high nibbles of those (k 2, 3); bits 2k..2k+1 of qh.
// Its two runs of 16 use scales[8h + 2k] and scales[8h + 2k + 1].
inline int q6_k_scale_index(int j) { return 8 * (j / 4) + 2 * (j % 4); }
inline I8 decode_q6_k(const BlockQ6_K& b, int j) {
    const int h = j / 4, k = j % 4;
    const uint8_t* ql = b.ql + 64 * h + 32 * (k & 1);
    const I8 lo = (k < 2) ? V::nibbles_lo(ql) : V::nibbles_hi(ql);
    return V::or_i8(lo, V::field2_of_bytes(b.qh + 32 * h, 2 * k));
}

// ---- dot products: one weight row with NC activation rows ------------------------------------
// Signature of every kernel: (elements per row, weight row, NC activation rows, NC results).

template <int NC>
void dot_q4_0(int64_t n, const uint8_t* w, const uint8_t* const* act, float* out) {
    const auto* x = reinterpret_cast<const BlockQ4_0*>(w);
    F32 acc[NC];
    for (auto& a : acc) a = V::fzero();
    for (int64_t i = 0; i < n / 32; ++i) {
        const I8 q = decode_q4_0(x[i]);
        const float d = fp16_to_f32(x[i].d);
        for (int c = 0; c < NC; ++c) {
            const ActQ8_0& y = reinterpret_cast<const ActQ8_0*>(act[c])[i];
            acc[c] = V::fmadd(V::to_f32(V::dot_i8(q, V::load_i8(y.qs))), V::fsplat(d * y.d), acc[c]);
        }
    }
    for (int c = 0; c < NC; ++c) out[c] = V::hsum(acc[c]);
}

template <int NC>
void dot_q5_0(int64_t n, const uint8_t* w, const uint8_t* const* act, float* out) {
    const auto* x = reinterpret_cast<const BlockQ5_0*>(w);
    F32 acc[NC];
    for (auto& a : acc) a = V::fzero();
    for (int64_t i = 0; i < n / 32; ++i) {
        const I8 q = decode_q5_0(x[i]);
        const float d = fp16_to_f32(x[i].d);
        for (int c = 0; c < NC; ++c) {
            const ActQ8_0& y = reinterpret_cast<const ActQ8_0*>(act[c])[i];
            acc[c] = V::fmadd(V::to_f32(V::dot_i8(q, V::load_i8(y.qs))), V::fsplat(d * y.d), acc[c]);
        }
    }
    for (int c = 0; c < NC; ++c) out[c] = V::hsum(acc[c]);
}

template <int NC>
void dot_q8_0(int64_t n, const uint8_t* w, const uint8_t* const* act, float* out) {
    const auto* x = reinterpret_cast<const BlockQ8_0*>(w);
    F32 acc[NC];
    for (auto& a : acc) a = V::fzero();
    for (int64_t i = 0; i < n / 32; ++i) {
        const I8 q = decode_q8_0(x[i]);
        const float d = fp16_to_f32(x[i].d);
        for (int c = 0; c < NC; ++c) {
            const ActQ8_0& y = reinterpret_cast<const ActQ8_0*>(act[c])[i];
            acc[c] = V::fmadd(V::to_f32(V::dot_i8(q, V::load_i8(y.qs))), V::fsplat(d * y.d), acc[c]);
        }
    }
    for (int c = 0; c < NC; ++c) out[c] = V::hsum(acc[c]);
}

// Q4_1 / Q5_1: sum (d q + m) (da a) = d da sum(q a) + m s, with s = da sum(a) from the Q8_1 block.
template <int NC>
void dot_q4_1(int64_t n, const uint8_t* w, const uint8_t* const* act, float* out) {
    const auto* x = reinterpret_cast<const BlockQ4_1*>(w);
    F32 acc[NC];
    float mins[NC] = {};
    for (auto& a : acc) a = V::fzero();
    for (int64_t i = 0; i < n / 32; ++i) {
        const I8 q = decode_q4_1(x[i]);
        const float d = fp16_to_f32(x[i].d), m = fp16_to_f32(x[i].m);
        for (int c = 0; c < NC; ++c) {
            const ActQ8_1& y = reinterpret_cast<const ActQ8_1*>(act[c])[i];
            acc[c] = V::fmadd(V::to_f32(V::dot_u8(q, V::load_i8(y.qs))), V::fsplat(d * y.d), acc[c]);
            mins[c] += m * y.s;
        }
    }
    for (int c = 0; c < NC; ++c) out[c] = V::hsum(acc[c]) + mins[c];
}

template <int NC>
void dot_q5_1(int64_t n, const uint8_t* w, const uint8_t* const* act, float* out) {
    const auto* x = reinterpret_cast<const BlockQ5_1*>(w);
    F32 acc[NC];
    float mins[NC] = {};
    for (auto& a : acc) a = V::fzero();
    for (int64_t i = 0; i < n / 32; ++i) {
        const I8 q = decode_q5_1(x[i]);
        const float d = fp16_to_f32(x[i].d), m = fp16_to_f32(x[i].m);
        for (int c = 0; c < NC; ++c) {
            const ActQ8_1& y = reinterpret_cast<const ActQ8_1*>(act[c])[i];
            acc[c] = V::fmadd(V::to_f32(V::dot_u8(q, V::load_i8(y.qs))), V::fsplat(d * y.d), acc[c]);
            mins[c] += m * y.s;
        }
    }
    for (int c = 0; c < NC; ++c) out[c] = V::hsum(acc[c]) + mins[c];
}

// Q4_K / Q5_K: per super-block d da sum_j sc_j (q_j . a_j) - dmin da sum_j m_j sum(a_j),
// where sum(a_j) comes from the Q8_K block's bsums.
template <class Block, I8 (*Decode)(const Block&, int), int NC>
void dot_k_scale_min(int64_t n, const uint8_t* w, const uint8_t* const* act, float* out) {
    const auto* x = reinterpret_cast<const Block*>(w);
    F32 acc[NC];
    float mins[NC] = {};
    for (auto& a : acc) a = V::fzero();
    for (int64_t i = 0; i < n / 256; ++i) {
        const Block& b = x[i];
        int32_t sc[8], m[8];
        for (int j = 0; j < 8; ++j) k_scale_min(b.scales, j, &sc[j], &m[j]);
        I32 isum[NC];
        for (auto& s : isum) s = V::zero_i32();
        for (int j = 0; j < 8; ++j) {
            const I8 q = Decode(b, j);
            for (int c = 0; c < NC; ++c) {
                const ActQ8_K& y = reinterpret_cast<const ActQ8_K*>(act[c])[i];
                isum[c] = V::add_i32(isum[c], V::mul_i32(V::dot_u8(q, V::load_i8(y.qs + 32 * j)), sc[j]));
            }
        }
        const float d = fp16_to_f32(b.d), dmin = fp16_to_f32(b.dmin);
        for (int c = 0; c < NC; ++c) {
            const ActQ8_K& y = reinterpret_cast<const ActQ8_K*>(act[c])[i];
            int32_t msum = 0;
            for (int j = 0; j < 8; ++j) msum += m[j] * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
            acc[c] = V::fmadd(V::to_f32(isum[c]), V::fsplat(d * y.d), acc[c]);
            mins[c] += dmin * y.d * static_cast<float>(msum);
        }
    }
    for (int c = 0; c < NC; ++c) out[c] = V::hsum(acc[c]) - mins[c];
}

template <int NC>
void dot_q4_k(int64_t n, const uint8_t* w, const uint8_t* const* act, float* out) {
    dot_k_scale_min<BlockQ4_K, decode_q4_k, NC>(n, w, act, out);
}
template <int NC>
void dot_q5_k(int64_t n, const uint8_t* w, const uint8_t* const* act, float* out) {
    dot_k_scale_min<BlockQ5_K, decode_q5_k, NC>(n, w, act, out);
}

// Q6_K: d da sum_g sc_g (q_g - 32) . a_g over runs g of 16; the -32 is applied through the
// activation sums: 32 sum_g sc_g bsum_g.
template <int NC>
void dot_q6_k(int64_t n, const uint8_t* w, const uint8_t* const* act, float* out) {
    const auto* x = reinterpret_cast<const BlockQ6_K*>(w);
    F32 acc[NC];
    float offsets[NC] = {};
    for (auto& a : acc) a = V::fzero();
    for (int64_t i = 0; i < n / 256; ++i) {
        const BlockQ6_K& b = x[i];
        I32 isum[NC];
        for (auto& s : isum) s = V::zero_i32();
        for (int j = 0; j < 8; ++j) {
            const I8 q = decode_q6_k(b, j);
            const int32_t lo = b.scales[q6_k_scale_index(j)], hi = b.scales[q6_k_scale_index(j) + 1];
            for (int c = 0; c < NC; ++c) {
                const ActQ8_K& y = reinterpret_cast<const ActQ8_K*>(act[c])[i];
                isum[c] = V::add_i32(isum[c], V::mul_i32_halves(V::dot_u8(q, V::load_i8(y.qs + 32 * j)), lo, hi));
            }
        }
        const float d = fp16_to_f32(b.d);
        for (int c = 0; c < NC; ++c) {
            const ActQ8_K& y = reinterpret_cast<const ActQ8_K*>(act[c])[i];
            int32_t scaled_sums = 0;
            for (int j = 0; j < 8; ++j) {
                const int s = q6_k_scale_index(j);
                scaled_sums += b.scales[s] * y.bsums[2 * j] + b.scales[s + 1] * y.bsums[2 * j + 1];
            }
            acc[c] = V::fmadd(V::to_f32(isum[c]), V::fsplat(d * y.d), acc[c]);
            offsets[c] += d * y.d * static_cast<float>(32 * scaled_sums);
        }
    }
    for (int c = 0; c < NC; ++c) out[c] = V::hsum(acc[c]) - offsets[c];
}

// F32 / F16 / BF16 weights against f32 activations (already rounded to the weight's precision).
inline F32 load_weights(const float* p) { return V::loadf(p); }
inline F32 load_weights(const uint16_t* p, bool bf16) { return bf16 ? V::load_bf16(p) : V::load_f16(p); }

template <class Elem, bool BF16, int NC>
void dot_float(int64_t n, const uint8_t* w, const uint8_t* const* act, float* out) {
    const auto* x = reinterpret_cast<const Elem*>(w);
    auto load = [](const Elem* p) {
        if constexpr (std::is_same_v<Elem, float>) return load_weights(p);
        else return load_weights(p, BF16);
    };
    auto scalar = [](Elem e) {
        if constexpr (std::is_same_v<Elem, float>) return e;
        else return BF16 ? bf16_to_f32(e) : fp16_to_f32(e);
    };
    F32 acc0[NC], acc1[NC];
    for (int c = 0; c < NC; ++c) acc0[c] = acc1[c] = V::fzero();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const F32 w0 = load(x + i), w1 = load(x + i + 8);
        for (int c = 0; c < NC; ++c) {
            const float* a = reinterpret_cast<const float*>(act[c]);
            acc0[c] = V::fmadd(w0, V::loadf(a + i), acc0[c]);
            acc1[c] = V::fmadd(w1, V::loadf(a + i + 8), acc1[c]);
        }
    }
    for (int c = 0; c < NC; ++c) {
        const float* a = reinterpret_cast<const float*>(act[c]);
        float s = V::hsum(V::fadd(acc0[c], acc1[c]));
        for (int64_t k = i; k < n; ++k) s += scalar(x[k]) * a[k];
        out[c] = s;
    }
}
template <int NC>
void dot_f32w(int64_t n, const uint8_t* w, const uint8_t* const* a, float* o) { dot_float<float, false, NC>(n, w, a, o); }
template <int NC>
void dot_f16w(int64_t n, const uint8_t* w, const uint8_t* const* a, float* o) { dot_float<uint16_t, false, NC>(n, w, a, o); }
template <int NC>
void dot_bf16w(int64_t n, const uint8_t* w, const uint8_t* const* a, float* o) { dot_float<uint16_t, true, NC>(n, w, a, o); }

// ---- the row driver ----------------------------------------------------------------------

// Rows in tiles small enough to stay in L1/L2 while every activation row passes over them,
// activation rows four at a time.
template <void (*K1)(int64_t, const uint8_t*, const uint8_t* const*, float*),
          void (*K2)(int64_t, const uint8_t*, const uint8_t* const*, float*),
          void (*K3)(int64_t, const uint8_t*, const uint8_t* const*, float*),
          void (*K4)(int64_t, const uint8_t*, const uint8_t* const*, float*)>
void run_rows(const MatmulJob& job, int64_t r0, int64_t r1) {
    constexpr int64_t kTileRows = 16;
    for (int64_t rt = r0; rt < r1; rt += kTileRows) {
        const int64_t re = std::min(rt + kTileRows, r1);
        for (int64_t t = 0; t < job.n_tok; t += 4) {
            const int nc = static_cast<int>(std::min<int64_t>(4, job.n_tok - t));
            const uint8_t* act[4];
            for (int c = 0; c < nc; ++c) act[c] = job.act + static_cast<size_t>(t + c) * job.act_stride;
            float* out = job.out + t * job.out_stride;
            for (int64_t r = rt; r < re; ++r) {
                const uint8_t* w = job.weight + static_cast<size_t>(r) * job.row_bytes;
                float o[4] = {};
                switch (nc) {
                    case 4: K4(job.n_in, w, act, o); break;
                    case 3: K3(job.n_in, w, act, o); break;
                    case 2: K2(job.n_in, w, act, o); break;
                    default: K1(job.n_in, w, act, o); break;
                }
                for (int c = 0; c < nc; ++c) out[c * job.out_stride + r] = o[c];
            }
        }
    }
}

#define APR_CPU_RUN_ROWS(kernel) run_rows<kernel<1>, kernel<2>, kernel<3>, kernel<4>>(job, r0, r1)

void matmul_rows(const MatmulJob& job, int64_t r0, int64_t r1) {
    switch (job.type) {
        case APR_TYPE_F32: APR_CPU_RUN_ROWS(dot_f32w); return;
        case APR_TYPE_F16: APR_CPU_RUN_ROWS(dot_f16w); return;
        case APR_TYPE_BF16: APR_CPU_RUN_ROWS(dot_bf16w); return;
        case APR_TYPE_Q4_0: APR_CPU_RUN_ROWS(dot_q4_0); return;
        case APR_TYPE_Q4_1: APR_CPU_RUN_ROWS(dot_q4_1); return;
        case APR_TYPE_Q5_0: APR_CPU_RUN_ROWS(dot_q5_0); return;
        case APR_TYPE_Q5_1: APR_CPU_RUN_ROWS(dot_q5_1); return;
        case APR_TYPE_Q8_0: APR_CPU_RUN_ROWS(dot_q8_0); return;
        case APR_TYPE_Q4_K: APR_CPU_RUN_ROWS(dot_q4_k); return;
        case APR_TYPE_Q5_K: APR_CPU_RUN_ROWS(dot_q5_k); return;
        case APR_TYPE_Q6_K: APR_CPU_RUN_ROWS(dot_q6_k); return;
        default: return;  // open() admits only the types above
    }
}
#undef APR_CPU_RUN_ROWS

// ---- dequantization (embedding rows), through the same decoders --------------------------

inline void store_scaled(I8 q, float d, float m, float* dst) {
    int8_t v[32];
    V::store_i8(v, q);
    for (int j = 0; j < 32; ++j) dst[j] = d * static_cast<float>(v[j]) + m;
}

void dequantize_row(uint32_t type, const void* row, float* dst, int64_t n) {
    const auto* p = static_cast<const uint8_t*>(row);
    switch (type) {
        case APR_TYPE_F32: std::memcpy(dst, p, static_cast<size_t>(n) * sizeof(float)); return;
        case APR_TYPE_F16:
        case APR_TYPE_BF16: {
            const auto* h = reinterpret_cast<const uint16_t*>(p);
            for (int64_t i = 0; i < n; ++i) dst[i] = type == APR_TYPE_F16 ? fp16_to_f32(h[i]) : bf16_to_f32(h[i]);
            return;
        }
        case APR_TYPE_Q4_0:
            for (int64_t i = 0; i < n / 32; ++i) {
                const auto& b = reinterpret_cast<const BlockQ4_0*>(p)[i];
                store_scaled(decode_q4_0(b), fp16_to_f32(b.d), 0.0f, dst + 32 * i);
            }
            return;
        case APR_TYPE_Q4_1:
            for (int64_t i = 0; i < n / 32; ++i) {
                const auto& b = reinterpret_cast<const BlockQ4_1*>(p)[i];
                store_scaled(decode_q4_1(b), fp16_to_f32(b.d), fp16_to_f32(b.m), dst + 32 * i);
            }
            return;
        case APR_TYPE_Q5_0:
            for (int64_t i = 0; i < n / 32; ++i) {
                const auto& b = reinterpret_cast<const BlockQ5_0*>(p)[i];
                store_scaled(decode_q5_0(b), fp16_to_f32(b.d), 0.0f, dst + 32 * i);
            }
            return;
        case APR_TYPE_Q5_1:
            for (int64_t i = 0; i < n / 32; ++i) {
                const auto& b = reinterpret_cast<const BlockQ5_1*>(p)[i];
                store_scaled(decode_q5_1(b), fp16_to_f32(b.d), fp16_to_f32(b.m), dst + 32 * i);
            }
            return;
        case APR_TYPE_Q8_0:
            for (int64_t i = 0; i < n / 32; ++i) {
                const auto& b = reinterpret_cast<const BlockQ8_0*>(p)[i];
                store_scaled(decode_q8_0(b), fp16_to_f32(b.d), 0.0f, dst + 32 * i);
            }
            return;
        case APR_TYPE_Q4_K:
        case APR_TYPE_Q5_K:
            for (int64_t i = 0; i < n / 256; ++i) {
                const bool q5 = type == APR_TYPE_Q5_K;
                const auto& b4 = reinterpret_cast<const BlockQ4_K*>(p)[i];
                const auto& b5 = reinterpret_cast<const BlockQ5_K*>(p)[i];
                const uint8_t* scales = q5 ? b5.scales : b4.scales;
                const float d = fp16_to_f32(q5 ? b5.d : b4.d), dmin = fp16_to_f32(q5 ? b5.dmin : b4.dmin);
                for (int j = 0; j < 8; ++j) {
                    int32_t sc, m;
                    k_scale_min(scales, j, &sc, &m);
                    const I8 q = q5 ? decode_q5_k(b5, j) : decode_q4_k(b4, j);
                    store_scaled(q, d * static_cast<float>(sc), -dmin * static_cast<float>(m), dst + 256 * i + 32 * j);
                }
            }
            return;
        case APR_TYPE_Q6_K:
            for (int64_t i = 0; i < n / 256; ++i) {
                const auto& b = reinterpret_cast<const BlockQ6_K*>(p)[i];
                const float d = fp16_to_f32(b.d);
                for (int j = 0; j < 8; ++j) {
                    int8_t v[32];
                    V::store_i8(v, V::sub_i8(decode_q6_k(b, j), V::splat_i8(32)));
                    const int s = q6_k_scale_index(j);  // runs of 16: scales s and s + 1
                    for (int l = 0; l < 32; ++l)
                        dst[256 * i + 32 * j + l] = d * static_cast<float>(b.scales[s + l / 16]) * static_cast<float>(v[l]);
                }
            }
            return;
        default: return;
    }
}

// ---- f32 vector helpers (attention) ---------------------------------------------------------

float dot_f32(const float* a, const float* b, int64_t n) {
    const uint8_t* act[1] = {reinterpret_cast<const uint8_t*>(b)};
    float out;
    dot_f32w<1>(n, reinterpret_cast<const uint8_t*>(a), act, &out);
    return out;
}

void axpy_f32(float alpha, const float* x, float* y, int64_t n) {
    const F32 va = V::fsplat(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) V::storef(y + i, V::fmadd(va, V::loadf(x + i), V::loadf(y + i)));
    for (; i < n; ++i) y[i] += alpha * x[i];
}
