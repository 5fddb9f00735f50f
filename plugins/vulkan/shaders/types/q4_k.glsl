// Q4_K (144 bytes per 256): fp16 d, fp16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of
// nibbles. Each 64 elements (chunk c) use bytes 32c .. 32c+31: the first 32 elements are the
// low nibbles (sub-block 2c), the next 32 the high nibbles (sub-block 2c+1).
// x = d * scale * q - dmin * min.
#include "k_scales.glsl"
#define QK 256u
#define BLOCK_BYTES 144u
vec4 dequant4(Words p, uint blk, uint e) {
    uint c = e >> 6, within = e & 63u, l = within & 31u;
    uint sub = 2u * c + (within >> 5);
    vec2 sm = k_scale_min(p, blk + 4u, sub);
    uint q = load_u32(p, blk + 16u + 32u * c + l);
    vec4 v = within < 32u ? nibbles_lo(q) : nibbles_hi(q);
    return load_f16(p, blk) * sm.x * v - load_f16(p, blk + 2u) * sm.y;
}

// 16 elements (half a sub-block): their nibbles as bytes, d * scale and -dmin * min.
#define HAS_INT8_PART
void int8_part(Words p, uint row, uint c, out uint q[4], out float d, out float m, out int offset) {
    uint blk = row + (c / QK) * BLOCK_BYTES;  // 144-byte blocks: word aligned
    uint e = c % QK;
    uint ch = e >> 6, within = e & 63u;
    vec2 sm = k_scale_min(p, blk + 4u, 2u * ch + (within >> 5));
    uint w = (blk + 16u + 32u * ch + (within & 31u)) >> 2;
    uint shift = within >= 32u ? 4u : 0u;
    for (uint j = 0u; j < 4u; ++j) q[j] = (p.w[w + j] >> shift) & 0x0F0F0F0Fu;
    d = load_f16(p, blk) * sm.x;
    m = -(load_f16(p, blk + 2u) * sm.y);
    offset = 0;
}
