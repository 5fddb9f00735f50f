#version 450
// Rounds activation rows to what a matrix product multiplies them with in llama.cpp's CPU
// backend (the weight type's vec_dot_type, ../shared/testdata/oracle/README.md), written back as
// f32 values: y = the rounded x, so that a product with the weight computes
// d_w * d_a * sum(q_w * q_a) up to f32 summation order. One variant per format:
//   ROUND_F16 / ROUND_BF16  each value rounded to f16 / bf16 (ties to even);
//   ROUND_Q8_0  blocks of 32: d = amax / 127, q = roundEven(x * (1 / d)) with the f32 d,
//               y = f16(d) * q  (the block stores d as f16, the quotient uses the f32 d);
//   ROUND_Q8_K  blocks of 256: iscale = 127 / amax, q = min(127, roundEven(iscale * x)),
//               y = (1 / iscale) * q, all f32.
// ggml takes Q8_K's iscale = -127 / m with m the signed value of largest magnitude; flipping the
// sign of iscale flips q and 1/iscale together (IEEE division and roundEven are odd functions,
// and |iscale * x| never rounds past 127), so y is the same with the positive amax.
// The divisions are correctly rounded (exact_division.glsl): GLSL's may be off by ulps.
// With FLAG_SWIGLU the row is silu(x) * up, the feed-forward gate, computed as it is read.
// Each invocation handles 4 values; a workgroup covers 256 values of one row.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "common.glsl"
#include "swiglu.glsl"
#include "half_float.glsl"
#include "exact_division.glsl"

layout(push_constant) uniform Params {
    uvec2 x;       // [n_rows][n] f32
    uvec2 up;      // with FLAG_SWIGLU: [n_rows][n] f32
    uvec2 y;       // [n_rows][n] f32, the rounded values
    uvec2 q8;      // ROUND_Q8_0 / ROUND_Q8_K, when not 0: [n_rows][n] int8, the quants of y
    uvec2 q8d;     // and [n_rows][n / block] f32, their block scales
    uint n;        // row length: a multiple of 4, of 32 for Q8_0 and of 256 for Q8_K
    uint n_rows;
    uint flags;
} pc;

#include "round_math.glsl"
#define BLOCK_LANES ROUND_BLOCK_GROUPS  // invocations per block (one group of 4 each)

#if BLOCK_LANES > 0
shared float amax_s[64];
// The largest of v over this invocation's block (aligned runs of BLOCK_LANES invocations).
float block_max(float v) {
    uint tid = gl_LocalInvocationIndex;
    amax_s[tid] = v;
    barrier();
    for (uint s = BLOCK_LANES / 2u; s > 0u; s >>= 1) {
        if ((tid & (BLOCK_LANES - 1u)) < s) amax_s[tid] = max(amax_s[tid], amax_s[tid + s]);
        barrier();
    }
    return amax_s[tid & ~(BLOCK_LANES - 1u)];
}
#endif

void main() {
    uint row = gl_WorkGroupID.y;
    if (row >= pc.n_rows) return;  // uniform over the workgroup
    uint g = gl_WorkGroupID.x * 64u + gl_LocalInvocationIndex;  // group of 4 within the row
    uint n4 = pc.n / 4u;
    bool inside = g < n4;  // whole blocks are inside or outside together (n is whole blocks)
    uint i = row * n4 + g;
    vec4 x = inside ? load_input(Vec4s(pc.x), pc.up, pc.flags, i) : vec4(0.0);
#if BLOCK_LANES > 0
    float amax = block_max(group_amax(x));
#else
    float amax = 0.0;
#endif
    vec2 scales = block_scales(amax);
    if (!inside) return;
    Vec4s(pc.y).v[i] = round_scaled(x, scales);
#ifdef ROUND_HAS_INT8
    if (pc.q8 != uvec2(0)) {
        WordsOut(pc.q8).w[i] = round_quants(x, scales);
        if (g % uint(ROUND_BLOCK_GROUPS) == 0u) Floats(pc.q8d).f[i / uint(ROUND_BLOCK_GROUPS)] = scales.x;
    }
#endif
}
