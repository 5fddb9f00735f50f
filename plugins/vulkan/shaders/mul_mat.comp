#version 450
// Decode mat-vec: y[t][row] = W[row] . x[t] (+ bias[row]) for ROWS weight rows and TILE_N
// token columns per workgroup (the build uses TILE_N = 1; prefill goes through mul_mm.comp),
// W in its file type, the whole workgroup striding along the rows together (each invocation
// takes the same 16 columns of all ROWS rows, so several independent weight reads are in
// flight per invocation: decode is latency-bound otherwise). f32 accumulation.
// With ACCUMULATE in flags the result is added to y (the residual stream); with SWIGLU the
// input is the feed-forward gate silu(x) * up, computed as it is read.
#extension GL_GOOGLE_include_directive : require
#ifndef WG_SIZE
#define WG_SIZE 64
#endif
// The workgroup size and the blocks each invocation loads before it uses them (INT8_BLOCK32
// loop) are specialization constants, WG_SIZE and 1 unless the host sets them (constant ids 0
// and 1, vulkan_session.cpp's APR_VULKAN_MV_WG / APR_VULKAN_MV_UNROLL): several settings can
// be measured with one build. WG is a power of two (the plain reduction halves it).
layout(constant_id = 0) const uint WG_SPEC = WG_SIZE;
layout(constant_id = 1) const uint UNROLL_SPEC = 1u;
#define WG WG_SPEC
#define MAX_UNROLL 4u
#define UNROLL min(UNROLL_SPEC, MAX_UNROLL)
layout(local_size_x_id = 0, local_size_x = WG_SIZE) in;
#include "common.glsl"
#include "weight_type.glsl"
#include "swiglu.glsl"
#ifdef INT8_ACTIVATIONS
// Products with activations rounded to Q8_0 / Q8_K (blocks of QK: scale dx, int8 quants), taken
// as llama.cpp's CPU backend takes them: integer dot products, times the two scales.
#include "int8_dot.glsl"
#ifndef HAS_INT8_PART
#error "INT8_ACTIVATIONS needs a weight type with int8_part"
#endif
#endif

#ifndef TILE_N
#define TILE_N 1u
#endif
#ifndef ROWS
#define ROWS 1u
#endif
#define NSUMS (ROWS * TILE_N)
#define FLAG_ACCUMULATE 1u
#define FLAG_BIAS 2u
// FLAG_ROPE << s: RoPE applied to the results of segment s (TILE_N 1, ROWS even: a pair's rows
// share a workgroup, and segments start at workgroup boundaries).
#define FLAG_ROPE 8u

// Up to three products of the same input and weight type in one dispatch (q/k/v, gate/up):
// segment s has its own weights w[s], rows[s] and output y[s]; the workgroups of segment 0 come
// first, then those of 1, then 2 (rows 0 for an absent one). 120 bytes: the push-constant limit
// is 128.
layout(push_constant) uniform Params {
    uvec2 w0, w1, w2;  // weight matrices: rows x ne0, rows of whole blocks
    uvec2 y0, y1, y2;  // outputs [n_tokens][rows] f32
    uvec2 x;       // activations [n_tokens][ne0] f32
    uvec2 bias;    // [rows] f32 when FLAG_BIAS (one segment only)
    uvec2 up;      // with FLAG_SWIGLU: the input is silu(x) * up, elementwise ([n_tokens][ne0] f32)
    uvec2 x_scales;  // INT8_ACTIVATIONS: x is [n_tokens][ne0] int8 and this [n_tokens][ne0 / QK] f32
    uvec2 rope_table;  // with FLAG_ROPE: rope.comp's (cos, sin) table
    uint ne0;
    uint rows0, rows1, rows2;
    uint n_tokens;
    uint flags;
    uint rope_pos;       // with FLAG_ROPE: the token's position (n_tokens is 1)
    uint rope_head_dim;  // and the head size; pairs (2i, 2i+1) of each head rotate (rope.comp's NORM)
} pc;

// NORM_SCALE variants: the input is rounding(x * norm weight) of a residual row x that a
// NORM_ROUND dispatch prepared (never with FLAG_SWIGLU, so `up` carries its slots): the RMSNorm's
// scalar 1 / sqrt(mean(x^2) + eps) is factored out of the rounding and multiplies the result
// here, from the sums of squares per 32 values the producer left in the slots. Variants of
// their own, so the products without it run exactly the code they ran before.
#define NORM_SLOTS pc.up  // f32: [0] eps, [4 + i] the sum of x^2 over x[32i .. 32i+31]
#define NORM_SLOT0 4u
#ifdef NORM_SCALE
#define NORM_SUMS 1u  // one more sum to reduce: the squares, sums[NSUMS]
#else
#define NORM_SUMS 0u
#endif

#if defined(SWIGLU_ROUND) || defined(NORM_ROUND)
#include "half_float.glsl"
#include "exact_division.glsl"
#include "round_math.glsl"
#include "block_rounding.glsl"
#endif

#ifdef NORM_ROUND
// One product into the residual stream (segment 0, n_tokens 1, ACCUMULATE) that prepares the
// next RMSNorm's products (NORM_SCALE): the last workgroup to finish the rows of a
// quantization block (-DROUND_<FORMAT>) writes the block's x * norm weight rounded and the sums
// of x^2 per 32 values. The block counters start at 0 and are left at 0. The slots this
// dispatch has no other use for carry:
#define NR_COUNTERS pc.w1        // [rows / block] uint
#define NR_WEIGHT pc.w2          // [rows] f32, the norm's weight
#define NR_SLOTS pc.y1           // the consumers' NORM_SLOTS
#define NR_ROUNDED pc.y2         // [rows] f32, x * weight rounded
#define NR_QUANTS pc.rope_table  // [rows] int8, its quants
#define NR_SCALES pc.bias        // [rows / block] f32, their block scales
shared float nr_squares[WG];
#endif

#ifdef SWIGLU_ROUND
// Gate (segment 0) and up (segment 1) of one token, followed by the rounding of silu(gate) * up
// that the down projection multiplies (-DROUND_Q8_0 / -DROUND_Q8_K, as round_activation.comp):
// the last workgroup to finish the rows of a quantization block rounds that block. The block
// counters start at 0 and are left at 0. The slots this dispatch has no other use for carry:
#define SR_COUNTERS pc.w2        // [rows / block] uint
#define SR_ROUNDED pc.y2         // [rows] f32, the rounded values
#define SR_QUANTS pc.rope_table  // [rows] int8, their quants
#define SR_SCALES pc.bias        // [rows / block] f32, their block scales
#endif

#ifdef USE_SUBGROUPS
#extension GL_KHR_shader_subgroup_arithmetic : require
shared float sums[NSUMS + NORM_SUMS][WG];  // [sum][subgroup]; sum NSUMS: NORM_SCALE's squares
#else
shared float sums[NSUMS + NORM_SUMS][WG];  // [sum][invocation]
#endif
shared float results[NSUMS];

void main() {
    uint wg = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint groups0 = (pc.rows0 + ROWS - 1u) / ROWS, groups1 = (pc.rows1 + ROWS - 1u) / ROWS;
    uint seg = wg < groups0 ? 0u : (wg < groups0 + groups1 ? 1u : 2u);
    uint rows = seg == 0u ? pc.rows0 : (seg == 1u ? pc.rows1 : pc.rows2);
    uvec2 w_at = seg == 0u ? pc.w0 : (seg == 1u ? pc.w1 : pc.w2);
    uvec2 y_at = seg == 0u ? pc.y0 : (seg == 1u ? pc.y1 : pc.y2);
    uint row0 = (wg - (seg == 0u ? 0u : (seg == 1u ? groups0 : groups0 + groups1))) * ROWS;
    if (row0 >= rows) return;  // uniform over the workgroup
    bool rope = (pc.flags & (FLAG_ROPE << seg)) != 0u;
    uint t0 = gl_WorkGroupID.z * TILE_N;
    uint tid = gl_LocalInvocationIndex;

    Words W = Words(w_at);
    Vec4s X = Vec4s(pc.x);
    uint row_bytes = (pc.ne0 / QK) * BLOCK_BYTES;
    uint n_groups = pc.ne0 / 4u;
    uint x_stride = pc.ne0 / 4u;

    float acc[NSUMS + NORM_SUMS];
    for (uint k = 0u; k < NSUMS; ++k) acc[k] = 0.0;
#ifdef NORM_SCALE
    // The norm's sum of squares, read before the weights so its latency hides behind theirs.
    acc[NSUMS] = 0.0;
    for (uint s = tid; s < pc.ne0 / 32u; s += WG) acc[NSUMS] += Floats(NORM_SLOTS).f[NORM_SLOT0 + s];
#endif

#if defined(INT8_ACTIVATIONS) && defined(HAS_INT8_BLOCK32)
    // Whole 32-element blocks (the activation's Q8_0 blocks): eight packed int8 dot products per row.
    UVec4s XQ = UVec4s(pc.x);
    Floats XD = Floats(pc.x_scales);
    uint n16 = pc.ne0 / 16u, n32 = pc.ne0 / 32u;
    // UNROLL blocks per step (part, part + WG, ...): all their loads are issued before the first
    // product uses them, so more bytes are in flight per invocation. A block past the row's end
    // reads the last block again and adds 0 (its activation scale is 0): the loads stay
    // unconditional, and the sums are added in the order of the plain loop.
    for (uint base = tid; base < n32; base += WG * UNROLL) {
        uvec4 xa[MAX_UNROLL][TILE_N], xb[MAX_UNROLL][TILE_N];
        float xd[MAX_UNROLL][TILE_N];
        uint q[MAX_UNROLL][ROWS][8];
        float d[MAX_UNROLL][ROWS], m[MAX_UNROLL][ROWS];
        int offset[MAX_UNROLL][ROWS];
        for (uint u = 0u; u < UNROLL; ++u) {
            uint part = base + u * WG;
            bool inside = part < n32;
            part = min(part, n32 - 1u);
            uint c = part * 32u;
            for (uint t = 0u; t < TILE_N; ++t) {
                bool live = inside && t0 + t < pc.n_tokens;
                uint tt = min(t0 + t, pc.n_tokens - 1u);
                xa[u][t] = XQ.v[tt * n16 + 2u * part];
                xb[u][t] = XQ.v[tt * n16 + 2u * part + 1u];
                xd[u][t] = live ? XD.f[tt * (pc.ne0 / QK) + c / QK] : 0.0;
            }
            for (uint r = 0u; r < ROWS; ++r) {
                uint row = min(row0 + r, rows - 1u);  // a partial last tile recomputes a valid row
                int8_block32(W, row * row_bytes, c, q[u][r], d[u][r], m[u][r], offset[u][r]);
            }
        }
        for (uint u = 0u; u < UNROLL; ++u) {
            int xsum[TILE_N];  // the sum of the activation quants, for the weights' offset and m
            for (uint t = 0u; t < TILE_N; ++t)
                xsum[t] = sdot4x8(xa[u][t].x, 0x01010101u) + sdot4x8(xa[u][t].y, 0x01010101u) +
                          sdot4x8(xa[u][t].z, 0x01010101u) + sdot4x8(xa[u][t].w, 0x01010101u) +
                          sdot4x8(xb[u][t].x, 0x01010101u) + sdot4x8(xb[u][t].y, 0x01010101u) +
                          sdot4x8(xb[u][t].z, 0x01010101u) + sdot4x8(xb[u][t].w, 0x01010101u);
            for (uint r = 0u; r < ROWS; ++r)
                for (uint t = 0u; t < TILE_N; ++t) {
                    int s = sdot4x8(q[u][r][0], xa[u][t].x) + sdot4x8(q[u][r][1], xa[u][t].y) +
                            sdot4x8(q[u][r][2], xa[u][t].z) + sdot4x8(q[u][r][3], xa[u][t].w) +
                            sdot4x8(q[u][r][4], xb[u][t].x) + sdot4x8(q[u][r][5], xb[u][t].y) +
                            sdot4x8(q[u][r][6], xb[u][t].z) + sdot4x8(q[u][r][7], xb[u][t].w) +
                            offset[u][r] * xsum[t];
                    acc[r * TILE_N + t] += (d[u][r] * float(s) + m[u][r] * float(xsum[t])) * xd[u][t];
                }
        }
    }
#elif defined(INT8_ACTIVATIONS)
    // Runs of 16 elements (within one activation block): four packed int8 dot products per row.
    UVec4s XQ = UVec4s(pc.x);
    Floats XD = Floats(pc.x_scales);
    uint n16 = pc.ne0 / 16u;
    for (uint part = tid; part < n16; part += WG) {
        uint c = part * 16u;
        uvec4 xq[TILE_N];
        float xd[TILE_N];
        int xsum[TILE_N];  // the sum of the activation quants, for the weights' offset and m
        for (uint t = 0u; t < TILE_N; ++t) {
            bool live = t0 + t < pc.n_tokens;
            xq[t] = live ? XQ.v[(t0 + t) * n16 + part] : uvec4(0u);
            xd[t] = live ? XD.f[(t0 + t) * (pc.ne0 / QK) + c / QK] : 0.0;
            xsum[t] = sdot4x8(xq[t].x, 0x01010101u) + sdot4x8(xq[t].y, 0x01010101u) +
                      sdot4x8(xq[t].z, 0x01010101u) + sdot4x8(xq[t].w, 0x01010101u);
        }
        for (uint r = 0u; r < ROWS; ++r) {
            uint row = min(row0 + r, rows - 1u);  // a partial last tile recomputes a valid row
            uint q[4];
            float d, m;
            int offset;
            int8_part(W, row * row_bytes, c, q, d, m, offset);
            for (uint t = 0u; t < TILE_N; ++t) {
                int s = sdot4x8(q[0], xq[t].x) + sdot4x8(q[1], xq[t].y) + sdot4x8(q[2], xq[t].z) +
                        sdot4x8(q[3], xq[t].w) + offset * xsum[t];
                acc[r * TILE_N + t] += (d * float(s) + m * float(xsum[t])) * xd[t];
            }
        }
    }
#else
    // Runs of 16 elements: one dequant16 per row reads a block's header once and its quants as
    // whole words; the activations are read once for all ROWS rows.
    uint n16 = pc.ne0 / 16u;
    for (uint part = tid; part < n16; part += WG) {
        uint c = part * 16u;
        vec4 xv[TILE_N][4];
        for (uint t = 0u; t < TILE_N; ++t)
            for (uint j = 0u; j < 4u; ++j)
                xv[t][j] = t0 + t < pc.n_tokens ? load_input(X, pc.up, pc.flags, (t0 + t) * x_stride + c / 4u + j)
                                                : vec4(0.0);
        for (uint r = 0u; r < ROWS; ++r) {
            uint row = min(row0 + r, rows - 1u);  // a partial last tile recomputes a valid row
            vec4 wv[4];
            dequant16(W, row * row_bytes, c, wv);
            for (uint t = 0u; t < TILE_N; ++t)
                acc[r * TILE_N + t] += dot(wv[0], xv[t][0]) + dot(wv[1], xv[t][1]) + dot(wv[2], xv[t][2]) +
                                       dot(wv[3], xv[t][3]);
        }
    }
    // The last ne0 % 16 elements (rows of 4-element blocks only), four at a time.
    for (uint g = n16 * 4u + tid; g < n_groups; g += WG) {
        uint c = g * 4u;
        uint in_row = (c / QK) * BLOCK_BYTES;
        vec4 xv[TILE_N];
        for (uint t = 0u; t < TILE_N; ++t)
            xv[t] = t0 + t < pc.n_tokens ? load_input(X, pc.up, pc.flags, (t0 + t) * x_stride + g) : vec4(0.0);
        for (uint r = 0u; r < ROWS; ++r) {
            uint row = min(row0 + r, rows - 1u);
            vec4 wv = dequant4(W, row * row_bytes + in_row, c % QK);
            for (uint t = 0u; t < TILE_N; ++t) acc[r * TILE_N + t] += dot(wv, xv[t]);
        }
    }

#endif

#ifdef USE_SUBGROUPS
    for (uint k = 0u; k < NSUMS + NORM_SUMS; ++k) {
        float s = subgroupAdd(acc[k]);
        if (subgroupElect()) sums[k][gl_SubgroupID] = s;
    }
    barrier();
    uint n_parts = gl_NumSubgroups;
#else
    for (uint k = 0u; k < NSUMS + NORM_SUMS; ++k) sums[k][tid] = acc[k];
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s)
            for (uint k = 0u; k < NSUMS + NORM_SUMS; ++k) sums[k][tid] += sums[k][tid + s];
        barrier();
    }
    uint n_parts = 1u;
#endif

#ifdef NORM_SCALE
    float squares = 0.0;  // the same order in every workgroup: the same bits
    for (uint i = 0u; i < n_parts; ++i) squares += sums[NSUMS][i];
    float norm_scale = inversesqrt(squares / float(pc.ne0) + Floats(NORM_SLOTS).f[0]);
#endif
    for (uint k = tid; k < NSUMS; k += WG) {
        float v = 0.0;
        for (uint i = 0u; i < n_parts; ++i) v += sums[k][i];
#ifdef NORM_SCALE
        v *= norm_scale;
#endif
        uint row = min(row0 + k / TILE_N, rows - 1u);
        if ((pc.flags & FLAG_BIAS) != 0u) v += Floats(pc.bias).f[row];
        results[k] = v;
    }
    barrier();

    Floats Y = Floats(y_at);
    for (uint k = tid; k < NSUMS; k += WG) {
        uint r = k / TILE_N, t = k % TILE_N;
        uint row = row0 + r;
        if (row >= rows || t0 + t >= pc.n_tokens) continue;
        float v = results[k];
        if (rope) {  // rope.comp's rotation of the pair (x0, x1)
            uint half_dim = pc.rope_head_dim / 2u;
            uint at = 2u * (pc.rope_pos * half_dim + (row % pc.rope_head_dim) / 2u);
            float c = Floats(pc.rope_table).f[at], sn = Floats(pc.rope_table).f[at + 1u];
            float x0 = results[k & ~1u], x1 = results[k | 1u];
            v = (row & 1u) == 0u ? x0 * c - x1 * sn : x0 * sn + x1 * c;
        }
        uint idx = (t0 + t) * rows + row;
        Y.f[idx] = (pc.flags & FLAG_ACCUMULATE) != 0u ? Y.f[idx] + v : v;
    }
#ifdef SWIGLU_ROUND
    // The block's gate and up rows come from 2 * BLOCK_VALUES / ROWS workgroups.
    uint blk = row0 / BLOCK_VALUES;
    if (!last_arrival(SR_COUNTERS, blk, 2u * (BLOCK_VALUES / ROWS))) return;  // uniform
    uint i = blk * uint(ROUND_BLOCK_GROUPS) + min(tid, uint(ROUND_BLOCK_GROUPS) - 1u);
    vec4 g = CoherentVec4s(pc.y0).v[i], u = CoherentVec4s(pc.y1).v[i];
    round_block(g / (1.0 + exp(-g)) * u, blk, SR_ROUNDED, SR_QUANTS, SR_SCALES);  // swiglu.glsl's load_input
#endif
#ifdef NORM_ROUND
    uint blk = row0 / BLOCK_VALUES;
    if (!last_arrival(NR_COUNTERS, blk, BLOCK_VALUES / ROWS)) return;  // uniform
    uint i = blk * uint(ROUND_BLOCK_GROUPS) + min(tid, uint(ROUND_BLOCK_GROUPS) - 1u);
    vec4 x = CoherentVec4s(y_at).v[i];
    // Sums of squares per 32 values (8 groups of 4), added in a fixed order.
    nr_squares[tid] = dot(x, x);
    barrier();
    if (tid < uint(ROUND_BLOCK_GROUPS) && tid % 8u == 0u) {
        float ss = 0.0;
        for (uint j = 0u; j < 8u; ++j) ss += nr_squares[tid + j];
        Floats(NR_SLOTS).f[NORM_SLOT0 + i / 8u] = ss;
    }
    round_block(x * Vec4s(NR_WEIGHT).v[i], blk, NR_ROUNDED, NR_QUANTS, NR_SCALES);
#endif
}
