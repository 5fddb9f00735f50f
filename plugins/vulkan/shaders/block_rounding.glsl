// The rounding of activations one quantization block at a time by the workgroup that finishes
// the block's last values (mul_mat.comp's SWIGLU_ROUND and NORM_ROUND epilogues), so a product
// can prepare the next product's input without a dispatch of its own and without one
// workgroup waiting for the whole row. Requires common.glsl, round_math.glsl (-DROUND_Q8_0 /
// -DROUND_Q8_K) and WG >= ROUND_BLOCK_GROUPS.
layout(buffer_reference, std430, buffer_reference_align = 4) buffer Counters { uint c[]; };
// Other workgroups' results: read past any incoherent cache.
layout(buffer_reference, std430, buffer_reference_align = 16) coherent readonly buffer CoherentVec4s { vec4 v[]; };
#define BLOCK_VALUES (4u * uint(ROUND_BLOCK_GROUPS))  // values per quantization block

shared bool block_last_s;
shared float block_amax_s[WG];

// Counts this workgroup's arrival at counters[c]; true (in every invocation) for the last of
// `arrivals`, which then resets the counter for the next dispatch and sees what the others
// wrote before they arrived. Call in uniform control flow after this workgroup's stores.
bool last_arrival(uvec2 counters, uint c, uint arrivals) {
    memoryBarrierBuffer();  // this workgroup's results out (past its caches) before its count goes up
    barrier();
    if (gl_LocalInvocationIndex == 0u) {
        block_last_s = atomicAdd(Counters(counters).c[c], 1u) == arrivals - 1u;
        if (block_last_s) Counters(counters).c[c] = 0u;
    }
    barrier();
    if (block_last_s) memoryBarrierBuffer();
    return block_last_s;
}

// Rounds block `blk` of a row: invocation t < ROUND_BLOCK_GROUPS brings the block's group t
// (4 values, x) and writes its rounded values, its int8 quants and (t 0) the block scale,
// exactly as round_activation.comp does. Call in uniform control flow.
void round_block(vec4 x, uint blk, uvec2 rounded, uvec2 quants, uvec2 scales) {
    uint tid = gl_LocalInvocationIndex;
    bool inside = tid < uint(ROUND_BLOCK_GROUPS);
    block_amax_s[tid] = inside ? group_amax(x) : 0.0;
    barrier();
    for (uint s = uint(ROUND_BLOCK_GROUPS) / 2u; s > 0u; s >>= 1) {
        if (tid < s) block_amax_s[tid] = max(block_amax_s[tid], block_amax_s[tid + s]);
        barrier();
    }
    vec2 sc = block_scales(block_amax_s[0]);
    if (!inside) return;
    uint i = blk * uint(ROUND_BLOCK_GROUPS) + tid;
    Vec4s(rounded).v[i] = round_scaled(x, sc);
    WordsOut(quants).w[i] = round_quants(x, sc);
    if (tid == 0u) Floats(scales).f[blk] = sc.x;
}
