#version 450
// Merges attention_split.comp's partial results of each query head:
// out = sum_s e^(m_s - M) * acc_s / sum_s e^(m_s - M) * l_s, with M the largest m_s.
// With -DROUND_Q8_0 the variant also rounds the head for the output projection (head_dim a
// multiple of 32 and at most 256, so each Q8_0 block lies in one head), as round_activation.comp
// would: `rounded` (f32) and, when q8 is not 0, the int8 quants and block scales.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "common.glsl"
#ifdef ROUND_Q8_0
#include "half_float.glsl"
#include "exact_division.glsl"
#include "round_math.glsl"
shared float amax_s[64];
#endif

layout(push_constant) uniform Params {
    uvec2 part;     // [n_head][n_splits][head_dim + 4]: vec4(m, l, 0, 0) then the sums
    uvec2 out_;     // [n_head * head_dim]
#ifdef ROUND_Q8_0
    uvec2 rounded;  // [n_head * head_dim] f32
    uvec2 q8;       // [n_head * head_dim] int8 when not 0
    uvec2 q8d;      // [n_head * head_dim / 32] f32
#endif
    uint n_splits;
    uint head_dim;
} pc;

void main() {
    uint h = gl_WorkGroupID.x;
    uint hd4 = pc.head_dim / 4u;
    Vec4s P = Vec4s(pc.part);
    uint base = h * pc.n_splits * (hd4 + 1u);
    float M = -3.402823e38;
    for (uint s = 0u; s < pc.n_splits; ++s) M = max(M, P.v[base + s * (hd4 + 1u)].x);
#ifdef ROUND_Q8_0
    uint d = gl_LocalInvocationIndex;  // hd4 <= 64: one group of 4 per invocation
    vec4 o = vec4(0.0);
    if (d < hd4) {
        vec4 acc = vec4(0.0);
        float l = 0.0;
        for (uint s = 0u; s < pc.n_splits; ++s) {
            uint b = base + s * (hd4 + 1u);
            vec2 ml = P.v[b].xy;
            float w = exp(ml.x - M);
            l += w * ml.y;
            acc += w * P.v[b + 1u + d];
        }
        o = acc / l;
    }
    amax_s[d] = group_amax(o);
    barrier();
    uint first = d & ~(uint(ROUND_BLOCK_GROUPS) - 1u);
    float amax = 0.0;
    for (uint j = 0u; j < uint(ROUND_BLOCK_GROUPS); ++j) amax = max(amax, amax_s[first + j]);
    if (d >= hd4) return;
    uint i = h * hd4 + d;
    vec2 scales = block_scales(amax);
    Vec4s(pc.out_).v[i] = o;
    Vec4s(pc.rounded).v[i] = round_scaled(o, scales);
    if (pc.q8 != uvec2(0)) {
        WordsOut(pc.q8).w[i] = round_quants(o, scales);
        if (d % uint(ROUND_BLOCK_GROUPS) == 0u) Floats(pc.q8d).f[i / uint(ROUND_BLOCK_GROUPS)] = scales.x;
    }
#else
    for (uint d = gl_LocalInvocationIndex; d < hd4; d += 64u) {
        vec4 acc = vec4(0.0);
        float l = 0.0;
        for (uint s = 0u; s < pc.n_splits; ++s) {
            uint b = base + s * (hd4 + 1u);
            vec2 ml = P.v[b].xy;
            float w = exp(ml.x - M);
            l += w * ml.y;
            acc += w * P.v[b + 1u + d];
        }
        Vec4s(pc.out_).v[h * hd4 + d] = acc / l;
    }
#endif
}
