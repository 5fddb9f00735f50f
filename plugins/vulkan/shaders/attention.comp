#version 450
// Causal attention of one query head of one token over the KV cache (one workgroup each).
// Query head h reads KV head h / (n_head / n_head_kv). Token t sits at position pos0 + t and
// sees cache positions 0 .. pos0 + t. Scores go to a scratch row in device memory (contexts
// can be longer than shared memory), softmax is taken with the row maximum subtracted.
#extension GL_GOOGLE_include_directive : require
#define WG 128u
layout(local_size_x = 128) in;
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

shared vec4 q_s[64];         // the query head (head_dim <= 256)
shared vec4 partial[WG];      // per-thread partial outputs of the weighted sum of V

void main() {
    uint h = gl_WorkGroupID.x;
    uint t = gl_WorkGroupID.y;
    uint tid = gl_LocalInvocationIndex;
    uint hd4 = pc.head_dim / 4u;
    uint kvh = h / (pc.n_head / pc.n_head_kv);
    uint kv_stride4 = pc.n_head_kv * hd4;
    uint q_stride4 = pc.n_head * hd4;
    uint n_kv = pc.pos0 + t + 1u;

    Vec4s Q = Vec4s(pc.q);
    Vec4s K = Vec4s(pc.k);
    Vec4s V = Vec4s(pc.v);
    Scratch S = Scratch(pc.scores);
    uint s_base = (t * pc.n_head + h) * pc.n_ctx;

    for (uint d = tid; d < hd4; d += WG) q_s[d] = Q.v[t * q_stride4 + h * hd4 + d];
    barrier();

    // Scores: each invocation takes whole cache rows (contiguous vec4 reads).
    float local_max = -3.402823e38;
    for (uint p = tid; p < n_kv; p += WG) {
        uint kb = p * kv_stride4 + kvh * hd4;
        float s = 0.0;
        for (uint d = 0u; d < hd4; ++d) s += dot(q_s[d], K.v[kb + d]);
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

    // Weighted sum of V: invocation (g, d) covers vec4 d of positions g, g + G, ...; the G
    // partial sums of each d are then added up.
    uint G = WG / hd4;
    uint g = tid / hd4, d = tid % hd4;
    vec4 acc = vec4(0.0);
    if (g < G) {
        uint vb = kvh * hd4 + d;
        for (uint p = g; p < n_kv; p += G) acc += S.f[s_base + p] * V.v[p * kv_stride4 + vb];
    }
    partial[tid] = acc;
    barrier();
    if (tid < hd4) {
        vec4 sum = vec4(0.0);
        for (uint j = 0u; j < G; ++j) sum += partial[j * hd4 + tid];
        Vec4s(pc.out_).v[t * q_stride4 + h * hd4 + tid] = sum * inv_sum;
    }
}
