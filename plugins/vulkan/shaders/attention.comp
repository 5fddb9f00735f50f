#version 450
// Causal attention of one query head of one token over the KV cache (one workgroup each).
// Query head h reads KV head h / (n_head / n_head_kv). Token t sits at position pos0 + t and
// sees cache positions 0 .. pos0 + t. Scores go to a scratch row in device memory (contexts
// can be longer than shared memory), softmax is taken with the row maximum subtracted.
#extension GL_GOOGLE_include_directive : require
#define WG 64u
layout(local_size_x = 64) in;
#include "common.glsl"
#include "reduce.glsl"

layout(buffer_reference, std430, buffer_reference_align = 4) coherent buffer Scratch { float f[]; };

layout(push_constant) uniform Params {
    uvec2 q;        // [n_tokens][n_head * head_dim]
    uvec2 k;        // this layer's K cache [n_ctx][n_head_kv * head_dim]
    uvec2 v;        // this layer's V cache, same layout
    uvec2 out_;     // [n_tokens][n_head * head_dim]
    uvec2 scores;   // [n_tokens][n_head][n_ctx] scratch
    uint n_tokens;
    uint pos0;
    uint n_head;
    uint n_head_kv;
    uint head_dim;
    uint n_ctx;
    float scale;
} pc;

shared float q_s[256];

void main() {
    uint h = gl_WorkGroupID.x;
    uint t = gl_WorkGroupID.y;
    uint tid = gl_LocalInvocationIndex;
    uint hd = pc.head_dim;
    uint kvh = h / (pc.n_head / pc.n_head_kv);
    uint kv_stride = pc.n_head_kv * hd;
    uint q_stride = pc.n_head * hd;
    uint n_kv = pc.pos0 + t + 1u;

    Floats Q = Floats(pc.q);
    Floats K = Floats(pc.k);
    Floats V = Floats(pc.v);
    Scratch S = Scratch(pc.scores);
    uint s_base = (t * pc.n_head + h) * pc.n_ctx;

    for (uint d = tid; d < hd; d += WG) q_s[d] = Q.f[t * q_stride + h * hd + d];
    barrier();

    float local_max = -3.402823e38;
    for (uint p = tid; p < n_kv; p += WG) {
        uint kb = p * kv_stride + kvh * hd;
        float s = 0.0;
        for (uint d = 0u; d < hd; ++d) s += q_s[d] * K.f[kb + d];
        s *= pc.scale;
        S.f[s_base + p] = s;
        local_max = max(local_max, s);
    }
    float m = wg_max(local_max);

    float local_sum = 0.0;
    for (uint p = tid; p < n_kv; p += WG) {
        float e = exp(S.f[s_base + p] - m);
        S.f[s_base + p] = e;
        local_sum += e;
    }
    float inv_sum = 1.0 / wg_sum(local_sum);
    memoryBarrierBuffer();
    barrier();

    Floats O = Floats(pc.out_);
    for (uint d = tid; d < hd; d += WG) {
        float acc = 0.0;
        uint vb = kvh * hd + d;
        for (uint p = 0u; p < n_kv; ++p) acc += S.f[s_base + p] * V.f[p * kv_stride + vb];
        O.f[t * q_stride + h * hd + d] = acc * inv_sum;
    }
}
