#version 450
// Rotary position embedding, in place, for n_heads heads of each of n_tokens rows.
// The angles come from a table of (cos, sin) per position and pair computed by the host in
// double precision (frequency base, linear scale and optional rope_freqs divisors folded in).
// NORM rotates pairs (2i, 2i+1); NEOX rotates pairs (i, i + n_rot/2).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "common.glsl"

layout(push_constant) uniform Params {
    uvec2 x;        // [n_tokens][row_stride] f32; head h starts at h * head_dim
    uvec2 table;    // [n_ctx][n_rot/2] vec2(cos, sin)
    uint n_tokens;
    uint n_heads;
    uint head_dim;
    uint row_stride;
    uint pos0;      // position of token 0
    uint n_rot;
    uint neox;
} pc;

void main() {
    uint half_rot = pc.n_rot / 2u;
    uint id = gl_GlobalInvocationID.x;
    if (id >= pc.n_tokens * pc.n_heads * half_rot) return;
    uint i = id % half_rot;
    uint h = (id / half_rot) % pc.n_heads;
    uint t = id / (half_rot * pc.n_heads);
    uint pos = pc.pos0 + t;
    Floats T = Floats(pc.table);
    float c = T.f[2u * (pos * half_rot + i)];
    float s = T.f[2u * (pos * half_rot + i) + 1u];
    uint base = t * pc.row_stride + h * pc.head_dim;
    uint a = base + (pc.neox != 0u ? i : 2u * i);
    uint b = a + (pc.neox != 0u ? half_rot : 1u);
    Floats X = Floats(pc.x);
    float x0 = X.f[a], x1 = X.f[b];
    X.f[a] = x0 * c - x1 * s;
    X.f[b] = x0 * s + x1 * c;
}
