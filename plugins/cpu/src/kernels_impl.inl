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
using I8Q = typename V::I8Q;  // quads: four weight rows side by side (simd_scalar.hpp)
using I32Q = typename V::I32Q;
using F32Q = typename V::F32Q;

// ---- decoders: one per weight type ---------------------------------------------------------

// Q4_0 and Q5_0 decode to their unsigned quants q; the value is d * (q - 2^kShift).
constexpr int kQ4_0OffsetShift = 3, kQ5_0OffsetShift = 4;
inline I8 decode_q4_0(const BlockQ4_0& b) { return V::nibbles16(b.qs); }
inline I8 decode_q4_1(const BlockQ4_1& b) { return V::nibbles16(b.qs); }  // 0..15, plus m
inline uint32_t load_u32(const uint8_t* p) { uint32_t u; std::memcpy(&u, p, 4); return u; }
inline I8 decode_q5_0(const BlockQ5_0& b) { return V::or_i8(V::nibbles16(b.qs), V::bits_to_lanes(load_u32(b.qh), 16)); }
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

// ---- dot products: NR weight rows with NC activation rows ----------------------------------
// Every kernel: (elements per row, first weight row, bytes between rows, NC activation rows,
// NR x NC results at out[r * NC + c]). Each (row, column) pair has its own accumulator fed in
// block order, so a result is the same whatever NR and NC are; several rows at once (decode:
// NR = 4) keep several independent multiply-add chains in flight, several columns at once
// (prefill) reuse each decoded weight block.

// Decode streams the weights from memory once per token: while it works on a group of rows it
// asks for the same bytes kPrefetchRows rows further on, so the loads the hardware prefetcher
// does not foresee (every row is a short stream) are already on their way. A prefetch past
// the end of the matrix is harmless (prefetches never fault).
constexpr size_t kPrefetchRows = 8;
template <int NR>
inline void prefetch_ahead(const void* p, size_t bytes, size_t row_bytes) {
    if constexpr (NR > 1) {
        const char* ahead = static_cast<const char*>(p) + kPrefetchRows * row_bytes;
        for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(ahead + off);
    }
}

template <int NR, int NC>
struct Acc {
    F32 v[NR][NC];
    float extra[NR][NC];  // scalar side terms (min / offset corrections)
    Acc() {
        for (int r = 0; r < NR; ++r)
            for (int c = 0; c < NC; ++c) v[r][c] = V::fzero(), extra[r][c] = 0.0f;
    }
    void store(float* out) const {
        for (int r = 0; r < NR; ++r)
            for (int c = 0; c < NC; ++c) out[r * NC + c] = V::hsum(v[r][c]) + extra[r][c];
    }
};

template <class Block>
inline const Block& block_at(const uint8_t* w, size_t row_bytes, int r, int64_t i) {
    return reinterpret_cast<const Block*>(w + static_cast<size_t>(r) * row_bytes)[i];
}

// Blocks of 32 against Q8_0 or Q8_1, by weight kind:
//   kSigned (Q8_0): x = d q with signed q;
//   kOffset (Q4_0, Q5_0): x = d (q - 2^shift) with unsigned q; per block the integer
//     sum q a - 2^shift sum a, the offset starting each lane's sum (exact, as a signed dot);
//   kWithMin (Q4_1, Q5_1): x = d q + m, and sum (d q + m) da a = d da sum(q a) + m s.
enum class Blocks32 { kSigned, kOffset, kWithMin };
template <class Block, I8 (*Decode)(const Block&), Blocks32 kKind, int kShift, int NR, int NC>
void dot_blocks32(int64_t n, const uint8_t* w, size_t row_bytes, const uint8_t* const* act, float* out) {
    constexpr bool kWithMin = kKind == Blocks32::kWithMin;
    using Act = std::conditional_t<kWithMin, ActQ8_1, ActQ8_0>;
    Acc<NR, NC> acc;
    for (int64_t i = 0; i < n / 32; ++i) {
        for (int r = 0; r < NR; ++r) {
            const Block& b = block_at<Block>(w, row_bytes, r, i);
            prefetch_ahead<NR>(&b, sizeof(Block), row_bytes);
            const I8 q = Decode(b);
            const float d = V::half(b.d);
            for (int c = 0; c < NC; ++c) {
                const Act& y = reinterpret_cast<const Act*>(act[c])[i];
                const I8 a = V::load_i8(y.qs);
                if constexpr (kWithMin) {
                    acc.v[r][c] = V::fmadd(V::to_f32(V::dot_u8(q, a)), V::fsplat(d * y.d), acc.v[r][c]);
                    acc.extra[r][c] += V::half(b.m) * y.s;
                } else if constexpr (kKind == Blocks32::kOffset) {
                    const I32 base = V::shl_i32(V::load_i32(y.neg_lane_sums), kShift);
                    acc.v[r][c] = V::fmadd(V::to_f32(V::dot_u8_add(base, q, a)), V::fsplat(d * y.d), acc.v[r][c]);
                } else {
                    acc.v[r][c] = V::fmadd(V::to_f32(V::dot_i8(q, a)), V::fsplat(d * y.d), acc.v[r][c]);
                }
            }
        }
    }
    acc.store(out);
}

template <int NR, int NC>
void dot_q4_0(int64_t n, const uint8_t* w, size_t rb, const uint8_t* const* a, float* o) {
    dot_blocks32<BlockQ4_0, decode_q4_0, Blocks32::kOffset, kQ4_0OffsetShift, NR, NC>(n, w, rb, a, o);
}
template <int NR, int NC>
void dot_q5_0(int64_t n, const uint8_t* w, size_t rb, const uint8_t* const* a, float* o) {
    dot_blocks32<BlockQ5_0, decode_q5_0, Blocks32::kOffset, kQ5_0OffsetShift, NR, NC>(n, w, rb, a, o);
}
template <int NR, int NC>
void dot_q8_0(int64_t n, const uint8_t* w, size_t rb, const uint8_t* const* a, float* o) {
    dot_blocks32<BlockQ8_0, decode_q8_0, Blocks32::kSigned, 0, NR, NC>(n, w, rb, a, o);
}
template <int NR, int NC>
void dot_q4_1(int64_t n, const uint8_t* w, size_t rb, const uint8_t* const* a, float* o) {
    dot_blocks32<BlockQ4_1, decode_q4_1, Blocks32::kWithMin, 0, NR, NC>(n, w, rb, a, o);
}
template <int NR, int NC>
void dot_q5_1(int64_t n, const uint8_t* w, size_t rb, const uint8_t* const* a, float* o) {
    dot_blocks32<BlockQ5_1, decode_q5_1, Blocks32::kWithMin, 0, NR, NC>(n, w, rb, a, o);
}

// Q4_K / Q5_K: per super-block d da sum_j sc_j (q_j . a_j) - dmin da sum_j m_j sum(a_j),
// where sum(a_j) comes from the Q8_K block's bsums.
template <class Block, I8 (*Decode)(const Block&, int), int NR, int NC>
void dot_k_scale_min(int64_t n, const uint8_t* w, size_t row_bytes, const uint8_t* const* act, float* out) {
    Acc<NR, NC> acc;
    for (int64_t i = 0; i < n / 256; ++i) {
        for (int r = 0; r < NR; ++r) {
            const Block& b = block_at<Block>(w, row_bytes, r, i);
            prefetch_ahead<NR>(&b, sizeof(Block), row_bytes);
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
            const float d = V::half(b.d), dmin = V::half(b.dmin);
            for (int c = 0; c < NC; ++c) {
                const ActQ8_K& y = reinterpret_cast<const ActQ8_K*>(act[c])[i];
                int32_t msum = 0;
                for (int j = 0; j < 8; ++j) msum += m[j] * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
                acc.v[r][c] = V::fmadd(V::to_f32(isum[c]), V::fsplat(d * y.d), acc.v[r][c]);
                acc.extra[r][c] -= dmin * y.d * static_cast<float>(msum);
            }
        }
    }
    acc.store(out);
}

template <int NR, int NC>
void dot_q4_k(int64_t n, const uint8_t* w, size_t rb, const uint8_t* const* a, float* o) {
    dot_k_scale_min<BlockQ4_K, decode_q4_k, NR, NC>(n, w, rb, a, o);
}
template <int NR, int NC>
void dot_q5_k(int64_t n, const uint8_t* w, size_t rb, const uint8_t* const* a, float* o) {
    dot_k_scale_min<BlockQ5_K, decode_q5_k, NR, NC>(n, w, rb, a, o);
}

// Q6_K: d da sum_g sc_g (q_g - 32) . a_g over runs g of 16; the -32 is applied through the
// activation sums: 32 sum_g sc_g bsum_g.
template <int NR, int NC>
void dot_q6_k(int64_t n, const uint8_t* w, size_t row_bytes, const uint8_t* const* act, float* out) {
    Acc<NR, NC> acc;
    for (int64_t i = 0; i < n / 256; ++i) {
        for (int r = 0; r < NR; ++r) {
            const BlockQ6_K& b = block_at<BlockQ6_K>(w, row_bytes, r, i);
            prefetch_ahead<NR>(&b, sizeof(BlockQ6_K), row_bytes);
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
            const float d = V::half(b.d);
            for (int c = 0; c < NC; ++c) {
                const ActQ8_K& y = reinterpret_cast<const ActQ8_K*>(act[c])[i];
                int32_t scaled_sums = 0;
                for (int j = 0; j < 8; ++j) {
                    const int s = q6_k_scale_index(j);
                    scaled_sums += b.scales[s] * y.bsums[2 * j] + b.scales[s + 1] * y.bsums[2 * j + 1];
                }
                acc.v[r][c] = V::fmadd(V::to_f32(isum[c]), V::fsplat(d * y.d), acc.v[r][c]);
                acc.extra[r][c] -= d * y.d * static_cast<float>(32 * scaled_sums);
            }
        }
    }
    acc.store(out);
}

// F32 / F16 / BF16 weights against f32 activations (already rounded to the weight's precision),
// two accumulators per pair (16 elements a step).
template <class Elem, bool kBF16>
inline F32 load_row(const Elem* p) {
    if constexpr (std::is_same_v<Elem, float>) return V::loadf(p);
    else if constexpr (kBF16) return V::load_bf16(p);
    else return V::load_f16(p);
}
template <class Elem, bool kBF16>
inline float scalar_of(Elem e) {
    if constexpr (std::is_same_v<Elem, float>) return e;
    else if constexpr (kBF16) return bf16_to_f32(e);
    else return fp16_to_f32(e);
}

template <class Elem, bool kBF16, int NR, int NC>
void dot_float(int64_t n, const uint8_t* w, size_t row_bytes, const uint8_t* const* act, float* out) {
    F32 acc0[NR][NC], acc1[NR][NC];
    for (int r = 0; r < NR; ++r)
        for (int c = 0; c < NC; ++c) acc0[r][c] = acc1[r][c] = V::fzero();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int r = 0; r < NR; ++r) {
            const Elem* x = reinterpret_cast<const Elem*>(w + static_cast<size_t>(r) * row_bytes);
            prefetch_ahead<NR>(x + i, 16 * sizeof(Elem), row_bytes);
            const F32 w0 = load_row<Elem, kBF16>(x + i), w1 = load_row<Elem, kBF16>(x + i + 8);
            for (int c = 0; c < NC; ++c) {
                const float* a = reinterpret_cast<const float*>(act[c]);
                acc0[r][c] = V::fmadd(w0, V::loadf(a + i), acc0[r][c]);
                acc1[r][c] = V::fmadd(w1, V::loadf(a + i + 8), acc1[r][c]);
            }
        }
    }
    for (int r = 0; r < NR; ++r) {
        const Elem* x = reinterpret_cast<const Elem*>(w + static_cast<size_t>(r) * row_bytes);
        for (int c = 0; c < NC; ++c) {
            const float* a = reinterpret_cast<const float*>(act[c]);
            float s = V::hsum(V::fadd(acc0[r][c], acc1[r][c]));
            for (int64_t k = i; k < n; ++k) s += scalar_of<Elem, kBF16>(x[k]) * a[k];
            out[r * NC + c] = s;
        }
    }
}
template <int NR, int NC>
void dot_f32w(int64_t n, const uint8_t* w, size_t rb, const uint8_t* const* a, float* o) { dot_float<float, false, NR, NC>(n, w, rb, a, o); }
template <int NR, int NC>
void dot_f16w(int64_t n, const uint8_t* w, size_t rb, const uint8_t* const* a, float* o) { dot_float<uint16_t, false, NR, NC>(n, w, rb, a, o); }
template <int NR, int NC>
void dot_bf16w(int64_t n, const uint8_t* w, size_t rb, const uint8_t* const* a, float* o) { dot_float<uint16_t, true, NR, NC>(n, w, rb, a, o); }

// ---- Q4_0 and Q8_0 regrouped in groups of 8 rows (block_formats.hpp, kGroupRows) -------------
// A column of a group is two quads of four rows. Each quad is decoded to two I8Q: `lo` holds
// elements 0..15 of each row, `hi` elements 16..31; the activation's two halves are broadcast
// to every slot, so a slot's int32 lane k sums elements 4k..4k+3 and 16+4k..16+4k+3. Per block
// that is the same integer sum as the row kernels (dot_q4_0, dot_q8_0); only the f32
// accumulation differs (4 lanes per row, not 8). Every (row, column) pair keeps its own
// accumulator, fed in block order whatever NC is. The formats differ only in how a quad is
// decoded and how its integer dot is formed:
//   Q4_0: unsigned nibbles q, value d (q - 8): the dot starts from the offset term
//         8 (neg_lane_sums[k] + neg_lane_sums[k + 4]), as dot_q4_0 does;
//   Q8_0: signed bytes q, value d q: a signed dot from zero.
struct GroupQ4_0 {
    static constexpr size_t kColumnBytes = kQ4_0GroupColumnBytes;
    static void decode(const uint8_t* col, int h, I8Q* lo, I8Q* hi) {
        const I8Q x = V::load_i8q(col + 2 * kGroupRows + 64 * h);
        *lo = V::nibbles_lo_q(x);
        *hi = V::nibbles_hi_q(x);
    }
    static I32Q start(const ActQ8_0& y) { return V::fold_halves_q(V::shl_i32(V::load_i32(y.neg_lane_sums), kQ4_0OffsetShift)); }
    static I32Q dot_add(I32Q base, I8Q w, I8Q a) { return V::dot_u8_add_q(base, w, a); }
};
struct GroupQ8_0 {
    static constexpr size_t kColumnBytes = kQ8_0GroupColumnBytes;
    static void decode(const uint8_t* col, int h, I8Q* lo, I8Q* hi) {
        const uint8_t* quad = col + 2 * kGroupRows + 128 * h;
        *lo = V::load_i8q(quad);
        *hi = V::load_i8q(quad + 64);
    }
    static I32Q start(const ActQ8_0&) { return V::zero_i32q(); }
    static I32Q dot_add(I32Q base, I8Q w, I8Q a) { return V::dot_i8_add_q(base, w, a); }
};

constexpr size_t kGroupPrefetchBytes = 1024;  // several columns ahead: the next rows' stream
template <class Format, int NC>
void dot_group(int64_t n, const uint8_t* group, const uint8_t* const* act, float* out) {
    F32Q acc[2][NC];
    for (auto& half : acc)
        for (auto& a : half) a = V::fzero_q();
    for (int64_t i = 0; i < n / 32; ++i) {
        const uint8_t* col = group + static_cast<size_t>(i) * Format::kColumnBytes;
        if constexpr (NC == 1)
            for (size_t off = 0; off < Format::kColumnBytes; off += 64) __builtin_prefetch(col + kGroupPrefetchBytes + off);
        const F32 d = V::load_f16(reinterpret_cast<const uint16_t*>(col));
        I8Q lo[2], hi[2];
        for (int h = 0; h < 2; ++h) Format::decode(col, h, &lo[h], &hi[h]);
        for (int c = 0; c < NC; ++c) {
            const ActQ8_0& y = reinterpret_cast<const ActQ8_0*>(act[c])[i];
            const I8Q a_lo = V::bcast16_q(y.qs), a_hi = V::bcast16_q(y.qs + 16);
            const I32Q base = Format::start(y);
            const F32 scale = V::fmul(d, V::fsplat(y.d));  // d * da per row, as the row kernels form it
            const I32Q s0 = Format::dot_add(Format::dot_add(base, lo[0], a_lo), hi[0], a_hi);
            const I32Q s1 = Format::dot_add(Format::dot_add(base, lo[1], a_lo), hi[1], a_hi);
            acc[0][c] = V::fmadd_q(V::to_f32q(s0), V::template spread_slots<0>(scale), acc[0][c]);
            acc[1][c] = V::fmadd_q(V::to_f32q(s1), V::template spread_slots<4>(scale), acc[1][c]);
        }
    }
    for (int h = 0; h < 2; ++h)
        for (int c = 0; c < NC; ++c) {
            float t[16];
            V::store_f32q(t, acc[h][c]);
            for (int s = 0; s < 4; ++s) out[(4 * h + s) * NC + c] = (t[4 * s] + t[4 * s + 2]) + (t[4 * s + 1] + t[4 * s + 3]);
        }
}

// Rows [r0, r1) of a regrouped matrix, both on group boundaries. Decode runs group after
// group (one sequential stream); prefill takes two groups at a time past four activation rows
// at a time, as run_rows does.
template <class Format>
void run_groups(const MatmulJob& job, int64_t r0, int64_t r1) {
    constexpr int64_t G = kGroupRows;
    const size_t group_bytes = static_cast<size_t>(job.n_in / 32) * Format::kColumnBytes;
    const uint8_t* grouped = job.grouped;
    auto group_at = [&](int64_t r) { return grouped + static_cast<size_t>(r / G) * group_bytes; };
    if (job.n_tok == 1) {
        const uint8_t* act[1] = {job.act};
        for (int64_t r = r0; r < r1; r += G) dot_group<Format, 1>(job.n_in, group_at(r), act, job.out + r);
        return;
    }
    static constexpr void (*kGroupNC[4])(int64_t, const uint8_t*, const uint8_t* const*, float*) = {
        dot_group<Format, 1>, dot_group<Format, 2>, dot_group<Format, 3>, dot_group<Format, 4>};
    constexpr int64_t kTileRows = 2 * G;
    for (int64_t rt = r0; rt < r1; rt += kTileRows) {
        const int64_t re = std::min(rt + kTileRows, r1);
        for (int64_t t = 0; t < job.n_tok; t += 4) {
            const int nc = static_cast<int>(std::min<int64_t>(4, job.n_tok - t));
            const uint8_t* act[4];
            for (int c = 0; c < nc; ++c) act[c] = job.act + static_cast<size_t>(t + c) * job.act_stride;
            float* out = job.out + t * job.out_stride;
            for (int64_t r = rt; r < re; r += G) {
                float o[G * 4];
                kGroupNC[nc - 1](job.n_in, group_at(r), act, o);
                for (int64_t k = 0; k < G; ++k)
                    for (int c = 0; c < nc; ++c) out[c * job.out_stride + r + k] = o[k * nc + c];
            }
        }
    }
}

// ---- the row driver ----------------------------------------------------------------------

using KernelFn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t* const*, float*);

// One activation row (decode): weight rows four at a time. Several activation rows (prefill):
// rows in tiles small enough to stay in L1/L2 while the activation rows pass over them, four
// activation rows at a time.
void run_rows(const MatmulJob& job, int64_t r0, int64_t r1, KernelFn k4x1, const KernelFn* k1xN) {
    if (job.n_tok == 1) {
        const uint8_t* act[1] = {job.act};
        int64_t r = r0;
        for (; r + 4 <= r1; r += 4) k4x1(job.n_in, job.weight + static_cast<size_t>(r) * job.row_bytes, job.row_bytes, act, job.out + r);
        for (; r < r1; ++r) k1xN[0](job.n_in, job.weight + static_cast<size_t>(r) * job.row_bytes, job.row_bytes, act, job.out + r);
        return;
    }
    constexpr int64_t kTileRows = 16;
    for (int64_t rt = r0; rt < r1; rt += kTileRows) {
        const int64_t re = std::min(rt + kTileRows, r1);
        for (int64_t t = 0; t < job.n_tok; t += 4) {
            const int nc = static_cast<int>(std::min<int64_t>(4, job.n_tok - t));
            const uint8_t* act[4];
            for (int c = 0; c < nc; ++c) act[c] = job.act + static_cast<size_t>(t + c) * job.act_stride;
            float* out = job.out + t * job.out_stride;
            for (int64_t r = rt; r < re; ++r) {
                float o[4] = {};
                k1xN[nc - 1](job.n_in, job.weight + static_cast<size_t>(r) * job.row_bytes, job.row_bytes, act, o);
                for (int c = 0; c < nc; ++c) out[c * job.out_stride + r] = o[c];
            }
        }
    }
}

#define APR_CPU_RUN_ROWS(kernel)                                                                         \
    do {                                                                                                 \
        static constexpr KernelFn one_row[4] = {kernel<1, 1>, kernel<1, 2>, kernel<1, 3>, kernel<1, 4>}; \
        run_rows(job, r0, r1, kernel<4, 1>, one_row);                                                    \
    } while (0)

void matmul_rows(const MatmulJob& job, int64_t r0, int64_t r1) {
    switch (job.type) {
        case APR_TYPE_F32: APR_CPU_RUN_ROWS(dot_f32w); return;
        case APR_TYPE_F16: APR_CPU_RUN_ROWS(dot_f16w); return;
        case APR_TYPE_BF16: APR_CPU_RUN_ROWS(dot_bf16w); return;
        case APR_TYPE_Q4_0:
            if (job.grouped) run_groups<GroupQ4_0>(job, r0, r1);
            else APR_CPU_RUN_ROWS(dot_q4_0);
            return;
        case APR_TYPE_Q4_1: APR_CPU_RUN_ROWS(dot_q4_1); return;
        case APR_TYPE_Q5_0: APR_CPU_RUN_ROWS(dot_q5_0); return;
        case APR_TYPE_Q5_1: APR_CPU_RUN_ROWS(dot_q5_1); return;
        case APR_TYPE_Q8_0:
            if (job.grouped) run_groups<GroupQ8_0>(job, r0, r1);
            else APR_CPU_RUN_ROWS(dot_q8_0);
            return;
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
                const float d = fp16_to_f32(b.d);  // d q - d 2^shift: both exact, as is their difference
                store_scaled(decode_q4_0(b), d, -d * (1 << kQ4_0OffsetShift), dst + 32 * i);
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
                const float d = fp16_to_f32(b.d);
                store_scaled(decode_q5_0(b), d, -d * (1 << kQ5_0OffsetShift), dst + 32 * i);
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
    dot_f32w<1, 1>(n, reinterpret_cast<const uint8_t*>(a), 0, act, &out);
    return out;
}

float dot_f16(const uint16_t* a, const float* b, int64_t n) {
    const uint8_t* act[1] = {reinterpret_cast<const uint8_t*>(b)};
    float out;
    dot_f16w<1, 1>(n, reinterpret_cast<const uint8_t*>(a), 0, act, &out);
    return out;
}

void axpy_f32(float alpha, const float* x, float* y, int64_t n) {
    const F32 va = V::fsplat(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) V::storef(y + i, V::fmadd(va, V::loadf(x + i), V::loadf(y + i)));
    for (; i < n; ++i) y[i] += alpha * x[i];
}

void axpy_f16(float alpha, const uint16_t* x, float* y, int64_t n) {
    const F32 va = V::fsplat(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) V::storef(y + i, V::fmadd(va, V::load_f16(x + i), V::loadf(y + i)));
    for (; i < n; ++i) y[i] += alpha * fp16_to_f32(x[i]);
}
