#version 450
// Merges attention_split.comp's partial results of each query head:
// out = sum_s e^(m_s - M) * acc_s / sum_s e^(m_s - M) * l_s, with M the largest m_s.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "common.glsl"

layout(push_constant) uniform Params {
    uvec2 part;     // [n_head][n_splits][head_dim + 4]: vec4(m, l, 0, 0) then the sums
    uvec2 out_;     // [n_head * head_dim]
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
}
