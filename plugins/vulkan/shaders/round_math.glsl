// The rounding of one group of 4 activation values to the dot-product format the build selects
// (-DROUND_<FORMAT>), shared by round_activation.comp and the fused rms_norm.comp and
// attention_combine.comp variants so all of them produce the same bits. See round_activation.comp for the formats and why the divisions
// are exact. Requires half_float.glsl and exact_division.glsl.
//   ROUND_BLOCK_GROUPS  groups of 4 per quantization block (Q8_0: 8, Q8_K: 64; 0: no block)
//   vec2 block_scales(float amax)          the block's scales (what the division gives), once per block
//   vec4 round_scaled(vec4 x, vec2 scales)
//   uint round_quants(vec4 x, vec2 scales)  Q8_0 / Q8_K (ROUND_HAS_INT8): the quants as packed int8
#if defined(ROUND_F16)
#define ROUND_BLOCK_GROUPS 0
vec2 block_scales(float amax) { return vec2(0.0); }
vec4 round_scaled(vec4 x, vec2 scales) {
    return vec4(round_to_f16(x.x), round_to_f16(x.y), round_to_f16(x.z), round_to_f16(x.w));
}
#elif defined(ROUND_BF16)
#define ROUND_BLOCK_GROUPS 0
vec2 block_scales(float amax) { return vec2(0.0); }
vec4 round_scaled(vec4 x, vec2 scales) {
    return vec4(round_to_bf16(x.x), round_to_bf16(x.y), round_to_bf16(x.z), round_to_bf16(x.w));
}
#elif defined(ROUND_Q8_0)
#define ROUND_BLOCK_GROUPS 8
// (the stored f16 d, the f32 1/d the quotient uses)
vec2 block_scales(float amax) {
    float d = div_rn(amax, 127.0);
    return vec2(round_to_f16(d), d != 0.0 ? div_rn(1.0, d) : 0.0);
}
vec4 round_scaled(vec4 x, vec2 scales) { return scales.x * roundEven(x * scales.y); }
// round_quants: the same quants as int8, packed into a word (byte i: element i), for int8
// products; the block's scale to go with them is scales.x.
#define ROUND_HAS_INT8
uint round_quants(vec4 x, vec2 scales) {
    ivec4 q = ivec4(roundEven(x * scales.y));
    return (uint(q.x) & 0xFFu) | ((uint(q.y) & 0xFFu) << 8) | ((uint(q.z) & 0xFFu) << 16) | (uint(q.w) << 24);
}
#elif defined(ROUND_Q8_K)
#define ROUND_BLOCK_GROUPS 64
// (d = 1 / iscale, iscale); (0, 0) for a block of zeros
vec2 block_scales(float amax) {
    if (amax == 0.0) return vec2(0.0);
    float iscale = div_rn(127.0, amax);
    return vec2(div_rn(1.0, iscale), iscale);
}
vec4 round_scaled(vec4 x, vec2 scales) {
    if (scales.x == 0.0) return vec4(0.0);
    return scales.x * min(vec4(127.0), roundEven(scales.y * x));
}
#define ROUND_HAS_INT8
uint round_quants(vec4 x, vec2 scales) {
    if (scales.x == 0.0) return 0u;
    ivec4 q = ivec4(min(vec4(127.0), roundEven(scales.y * x)));
    return (uint(q.x) & 0xFFu) | ((uint(q.y) & 0xFFu) << 8) | ((uint(q.z) & 0xFFu) << 16) | (uint(q.w) << 24);
}
#else
#error "no ROUND_<FORMAT> defined"
#endif

// The largest |value| of a group.
float group_amax(vec4 x) {
    vec4 a = abs(x);
    return max(max(a.x, a.y), max(a.z, a.w));
}
