#version 450
// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, one workgroup per row of n floats.
// Rows are contiguous; x and y may be the same buffer (each invocation rewrites what it read).
// With -DROUND_<FORMAT> (round_math.glsl) the variant also writes the normalized row rounded
// for the matrix products that read it, to `rounded` (n a multiple of 4 and at most MAX_N), so
// the rounding needs no dispatch and no barrier of its own; the bits are round_activation.comp's.
// These variants read x twice, so x and y must not overlap.
#extension GL_GOOGLE_include_directive : require
#ifdef ROUND_ANY
// One row per decode step: a wide workgroup, so the row is read in one or two steps (a
// narrow one walks it serially, latency-bound).
#define WG 512u
layout(local_size_x = 512) in;
#else
#define WG 128u
layout(local_size_x = 128) in;
#endif
#include "common.glsl"
#include "reduce.glsl"

layout(push_constant) uniform Params {
    uvec2 x;
    uvec2 y;
    uvec2 weight;   // [n] f32
    uvec2 rounded;  // ROUND_ variants: [n_rows][n] f32
    uvec2 q8;       // ROUND_Q8_0 / ROUND_Q8_K, when not 0: [n_rows][n] int8, the quants of `rounded`
    uvec2 q8d;      // and [n_rows][n / block] f32, their block scales
    uint n;
    uint n_rows;
    float eps;
} pc;

#ifdef ROUND_ANY
#include "half_float.glsl"
#include "exact_division.glsl"
#include "round_math.glsl"
#define MAX_N 16384u
#if ROUND_BLOCK_GROUPS > 0
shared float amax_s[MAX_N / 4u];  // per group of 4
shared vec2 scales_s[MAX_N / 4u / ROUND_BLOCK_GROUPS];  // per quantization block
#endif
#endif

void main() {
    uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (r >= pc.n_rows) return;
    uint tid = gl_LocalInvocationIndex;
    Floats X = Floats(pc.x);
    Floats Y = Floats(pc.y);
    Floats Wt = Floats(pc.weight);
    uint base = r * pc.n;
    float ss = 0.0;
#ifdef ROUND_ANY
    Vec4s X4 = Vec4s(pc.x), Y4 = Vec4s(pc.y), W4 = Vec4s(pc.weight), R4 = Vec4s(pc.rounded);
    uint n4 = pc.n / 4u, base4 = r * n4;
    for (uint g = tid; g < n4; g += WG) {
        vec4 v = X4.v[base4 + g];
        ss += dot(v, v);
    }
#else
    for (uint i = tid; i < pc.n; i += WG) {
        float v = X.f[base + i];
        ss += v * v;
    }
#endif
    float scale = inversesqrt(wg_sum(ss) / float(pc.n) + pc.eps);
#ifndef ROUND_ANY
    for (uint i = tid; i < pc.n; i += WG) Y.f[base + i] = X.f[base + i] * scale * Wt.f[i];
#else
    // Groups of 4: the normalized values (the same products as above), the largest magnitude
    // per group, the scales per quantization block, then the rounded values.
    for (uint g = tid; g < n4; g += WG) {
        vec4 y = X4.v[base4 + g] * scale * W4.v[g];
        Y4.v[base4 + g] = y;
#if ROUND_BLOCK_GROUPS > 0
        amax_s[g] = group_amax(y);
#endif
    }
#if ROUND_BLOCK_GROUPS > 0
    barrier();
    for (uint b = tid; b < n4 / ROUND_BLOCK_GROUPS; b += WG) {
        float m = 0.0;
        for (uint j = 0u; j < ROUND_BLOCK_GROUPS; ++j) m = max(m, amax_s[b * ROUND_BLOCK_GROUPS + j]);
        scales_s[b] = block_scales(m);
    }
    barrier();
#endif
    for (uint g = tid; g < n4; g += WG) {
        vec4 y = X4.v[base4 + g] * scale * W4.v[g];
#if ROUND_BLOCK_GROUPS > 0
        vec2 scales = scales_s[g / ROUND_BLOCK_GROUPS];
#else
        vec2 scales = vec2(0.0);
#endif
        R4.v[base4 + g] = round_scaled(y, scales);
#ifdef ROUND_HAS_INT8
        if (pc.q8 != uvec2(0)) {
            WordsOut(pc.q8).w[base4 + g] = round_quants(y, scales);
            if (g % uint(ROUND_BLOCK_GROUPS) == 0u) Floats(pc.q8d).f[(base4 + g) / uint(ROUND_BLOCK_GROUPS)] = scales.x;
        }
#endif
    }
#endif
}
