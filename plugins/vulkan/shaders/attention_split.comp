#version 450
// Decode attention, split along the context (flash-decoding): workgroup (h, s) takes query head
// h of the one new token over cache positions s * SPLIT .. s * SPLIT + SPLIT - 1 (clipped to the
// n_kv positions the token sees) and writes its partial result: the maximum score m, the sum
// l of e^(score - m), and sum_p e^(score_p - m) * V[p] (head_dim floats), unnormalized.
// attention_combine.comp merges the splits. One workgroup per head over a long context would
// leave most of the GPU idle and walk the cache serially.
// Query head h reads KV head h / (n_head / n_head_kv).
#extension GL_GOOGLE_include_directive : require
#define WG 128u
#define SPLIT 32u
#define TPP (WG / SPLIT)  // invocations per position for the scores
layout(local_size_x = 128) in;
#include "common.glsl"
#include "reduce.glsl"

layout(push_constant) uniform Params {
    uvec2 q;        // [n_head * head_dim], the new token's queries
    uvec2 k;        // this layer's K cache [n_ctx][n_head_kv * head_dim]
    uvec2 v;        // this layer's V cache, same layout
    uvec2 part;     // [n_head][n_splits][head_dim + 4]: vec4(m, l, 0, 0) then the sums
    uint n_kv;      // positions the token sees
    uint n_splits;
    uint n_head;
    uint n_head_kv;
    uint head_dim;
    float scale;
#ifdef COMBINE
    // The last workgroup of each head merges the head's splits (attention_combine.glsl) into
    // out_ (and with ROUND_Q8_0 rounds it): a dispatch and a barrier fewer.
    uvec2 counters;  // [n_head] uint, finished splits per head; start at 0, left at 0
    uvec2 out_;
    uvec2 rounded, q8, q8d;  // ROUND_Q8_0: as attention_combine.comp's
#endif
} pc;
#ifdef COMBINE
#define COMBINE_LANES WG
#ifdef ROUND_Q8_0
#include "half_float.glsl"
#include "exact_division.glsl"
#include "round_math.glsl"
#endif
#include "attention_combine.glsl"
layout(buffer_reference, std430, buffer_reference_align = 4) buffer Counters { uint c[]; };
shared bool last_s;
#endif

shared vec4 q_s[64];      // the query head (head_dim <= 256)
shared float p_s[SPLIT];  // e^(score - m) per position of the split
shared float dot_s[WG];   // partial dot products of the scores
shared vec4 partial[WG];  // per-invocation partial sums of V

void main() {
    uint h = gl_WorkGroupID.x;
    uint s = gl_WorkGroupID.y;
    uint tid = gl_LocalInvocationIndex;
    uint hd4 = pc.head_dim / 4u;
    uint kvh = h / (pc.n_head / pc.n_head_kv);
    uint kv_stride4 = pc.n_head_kv * hd4;
    uint p0 = s * SPLIT;
    uint n = min(SPLIT, pc.n_kv - p0);

    Vec4s K = Vec4s(pc.k);
    Vec4s V = Vec4s(pc.v);
    for (uint d = tid; d < hd4; d += WG) q_s[d] = Vec4s(pc.q).v[h * hd4 + d];
    barrier();

    // Scores: TPP invocations per position, each a strided share of the head (vec4 reads).
    uint sp = tid / TPP, lane = tid % TPP;
    float part = 0.0;
    if (sp < n) {
        uint kb = (p0 + sp) * kv_stride4 + kvh * hd4;
        for (uint d = lane; d < hd4; d += TPP) part += dot(q_s[d], K.v[kb + d]);
    }
    dot_s[tid] = part;
    barrier();
    float score = -3.402823e38;
    if (tid < n) {
        float acc = 0.0;
        for (uint j = 0u; j < TPP; ++j) acc += dot_s[tid * TPP + j];
        score = acc * pc.scale;
    }
    float m = wg_max(score);
    float e = tid < n ? exp(score - m) : 0.0;
    if (tid < SPLIT) p_s[tid] = e;
    float l = wg_sum(e);  // its barriers also publish p_s

    // Weighted sum of V: invocation (g, d) covers vec4 d of positions g, g + G, ...
    uint G = WG / hd4;
    uint g = tid / hd4, d = tid % hd4;
    vec4 acc = vec4(0.0);
    if (g < G) {
        uint vb = kvh * hd4 + d;
        for (uint p = g; p < n; p += G) acc += p_s[p] * V.v[(p0 + p) * kv_stride4 + vb];
    }
    partial[tid] = acc;
    barrier();
    Vec4s P = Vec4s(pc.part);
    uint base = (h * pc.n_splits + s) * (hd4 + 1u);
    if (tid < hd4) {
        vec4 sum = vec4(0.0);
        for (uint j = 0u; j < G; ++j) sum += partial[j * hd4 + tid];
        P.v[base + 1u + tid] = sum;
    }
    if (tid == 0u) P.v[base] = vec4(m, l, 0.0, 0.0);
#ifdef COMBINE
    memoryBarrierBuffer();  // the partial result out before the head's count goes up
    barrier();
    if (tid == 0u) last_s = atomicAdd(Counters(pc.counters).c[h], 1u) == pc.n_splits - 1u;
    barrier();
    if (!last_s) return;  // uniform over the workgroup
    memoryBarrierBuffer();
    combine_head(h, tid, pc.part, pc.out_, pc.rounded, pc.q8, pc.q8d, pc.n_splits, pc.head_dim);
    if (tid == 0u) Counters(pc.counters).c[h] = 0u;  // for the next dispatch
#endif
}
