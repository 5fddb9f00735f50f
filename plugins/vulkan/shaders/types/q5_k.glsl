// Q5_K (176 bytes per 256): fp16 d, fp16 dmin, 12 bytes of scales/mins (as Q4_K), 32 bytes qh,
// 128 bytes of nibbles (as Q4_K). The fifth bit of element l of sub-block s is bit s of qh[l].
// x = d * scale * q - dmin * min.
#include "k_scales.glsl"
#define QK 256u
#define BLOCK_BYTES 176u
vec4 dequant4(Words p, uint blk, uint e) {
    uint c = e >> 6, within = e & 63u, l = within & 31u;
    uint sub = 2u * c + (within >> 5);
    vec2 sm = k_scale_min(p, blk + 4u, sub);
    uint q = load_u32(p, blk + 48u + 32u * c + l);
    uint h = load_u32(p, blk + 16u + l) >> sub;
    vec4 high = vec4(float(h & 1u), float((h >> 8) & 1u), float((h >> 16) & 1u), float((h >> 24) & 1u));
    vec4 v = (within < 32u ? nibbles_lo(q) : nibbles_hi(q)) + 16.0 * high;
    return load_f16(p, blk) * sm.x * v - load_f16(p, blk + 2u) * sm.y;
}
