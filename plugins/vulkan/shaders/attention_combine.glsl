// The merge of attention_split.comp's partial results of query head h: out = sum_s e^(m_s - M)
// * acc_s / sum_s e^(m_s - M) * l_s, with M the largest m_s; shared by attention_combine.comp and
// attention_split.comp's COMBINE variants (whose last workgroup per head merges). COMBINE_LANES
// invocations call it together, d their index. With ROUND_Q8_0 it also rounds the head for the
// output projection (head_dim a multiple of 32 and at most 4 * COMBINE_LANES, so each Q8_0 block
// lies in one head), as round_activation.comp would: `rounded` (f32) and, when q8 is not 0, the
// int8 quants and block scales. Requires common.glsl (and for ROUND_Q8_0, round_math.glsl).
// The partial results come from other workgroups: read past any incoherent cache.
layout(buffer_reference, std430, buffer_reference_align = 16) coherent readonly buffer CombineParts { vec4 v[]; };
#ifdef ROUND_Q8_0
shared float combine_amax[COMBINE_LANES];
#endif

// Group d (4 elements) of one head, merged over its n_splits parts from `base` on.
vec4 combine_group(CombineParts P, uint base, uint n_splits, uint hd4, float M, uint d) {
    vec4 acc = vec4(0.0);
    float l = 0.0;
    for (uint s = 0u; s < n_splits; ++s) {
        uint b = base + s * (hd4 + 1u);
        vec2 ml = P.v[b].xy;
        float w = exp(ml.x - M);
        l += w * ml.y;
        acc += w * P.v[b + 1u + d];
    }
    return acc / l;
}

void combine_head(uint h, uint d, uvec2 part, uvec2 out_, uvec2 rounded, uvec2 q8, uvec2 q8d, uint n_splits,
                  uint head_dim) {
    uint hd4 = head_dim / 4u;
    CombineParts P = CombineParts(part);
    uint base = h * n_splits * (hd4 + 1u);
    float M = -3.402823e38;
    for (uint s = 0u; s < n_splits; ++s) M = max(M, P.v[base + s * (hd4 + 1u)].x);
#ifdef ROUND_Q8_0
    // One group of 4 per invocation (those past the head take part in the block maxima only).
    vec4 o = d < hd4 ? combine_group(P, base, n_splits, hd4, M, d) : vec4(0.0);
    combine_amax[d] = group_amax(o);
    barrier();
    uint first = d & ~(uint(ROUND_BLOCK_GROUPS) - 1u);
    float amax = 0.0;
    for (uint j = 0u; j < uint(ROUND_BLOCK_GROUPS); ++j) amax = max(amax, combine_amax[first + j]);
    if (d >= hd4) return;
    uint i = h * hd4 + d;
    vec2 scales = block_scales(amax);
    Vec4s(out_).v[i] = o;
    Vec4s(rounded).v[i] = round_scaled(o, scales);
    if (q8 != uvec2(0)) {
        WordsOut(q8).w[i] = round_quants(o, scales);
        if (d % uint(ROUND_BLOCK_GROUPS) == 0u) Floats(q8d).f[i / uint(ROUND_BLOCK_GROUPS)] = scales.x;
    }
#else
    for (; d < hd4; d += COMBINE_LANES) {
        Vec4s(out_).v[h * hd4 + d] = combine_group(P, base, n_splits, hd4, M, d);
    }
#endif
}
