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

// For int8 products: the scale d * scale_j and the term -dmin * min_j of sub-block j, from the
// block header (d, dmin, the 12 scale bytes) held as four words; k_scale_min on registers (scale
// byte i in word 1 + i / 4 at bits 8 * (i % 4)).
void q4_k_sub_scales(uvec4 head, uint j, out float d, out float m) {
    uint b_j = ((j < 4u ? head.y : head.z) >> (8u * (j & 3u))) & 0xFFu;       // byte j
    uint b_j4 = ((j < 4u ? head.z : head.w) >> (8u * (j & 3u))) & 0xFFu;      // byte j + 4
    float sc, mn;
    if (j < 4u) {
        sc = float(b_j & 63u);
        mn = float(b_j4 & 63u);
    } else {
        uint b_jm4 = (head.y >> (8u * (j & 3u))) & 0xFFu;  // byte j - 4
        sc = float((b_j4 & 0xFu) | ((b_jm4 >> 6) << 4));
        mn = float((b_j4 >> 4) | ((b_j >> 6) << 4));
    }
    vec2 dm = unpackHalf2x16(head.x);
    d = dm.x * sc;
    m = -(dm.y * mn);
}

// Blocks are 144 = 9 * 16 bytes and tensors start 16-byte aligned, so the block header and each
// 16 quant bytes are one 16-byte load each.
// 16 elements (half a sub-block): their nibbles as bytes, d * scale and -dmin * min.
#define HAS_INT8_PART
void int8_part(Words p, uint row, uint c, out uint q[4], out float d, out float m, out int offset) {
    uint blk = row + (c / QK) * BLOCK_BYTES;
    uint e = c % QK;
    uint ch = e >> 6, within = e & 63u;
    UVec4s v = UVec4s(p);
    uvec4 qw = v.v[(blk + 16u + 32u * ch + (within & 31u)) >> 4];
    uint shift = within >= 32u ? 4u : 0u;
    q[0] = (qw.x >> shift) & 0x0F0F0F0Fu;
    q[1] = (qw.y >> shift) & 0x0F0F0F0Fu;
    q[2] = (qw.z >> shift) & 0x0F0F0F0Fu;
    q[3] = (qw.w >> shift) & 0x0F0F0F0Fu;
    q4_k_sub_scales(v.v[blk >> 4], 2u * ch + (within >> 5), d, m);
    offset = 0;
}

// A whole sub-block (32 elements at c, a multiple of 32): 32 nibbles as bytes q[0..7].
#define HAS_INT8_BLOCK32
void int8_block32(Words p, uint row, uint c, out uint q[8], out float d, out float m, out int offset) {
    uint blk = row + (c / QK) * BLOCK_BYTES;
    uint e = c % QK;
    uint ch = e >> 6, shift = (e & 32u) != 0u ? 4u : 0u;
    UVec4s v = UVec4s(p);
    uint at = (blk + 16u + 32u * ch) >> 4;
    uvec4 qa = v.v[at], qb = v.v[at + 1u];
    q[0] = (qa.x >> shift) & 0x0F0F0F0Fu;
    q[1] = (qa.y >> shift) & 0x0F0F0F0Fu;
    q[2] = (qa.z >> shift) & 0x0F0F0F0Fu;
    q[3] = (qa.w >> shift) & 0x0F0F0F0Fu;
    q[4] = (qb.x >> shift) & 0x0F0F0F0Fu;
    q[5] = (qb.y >> shift) & 0x0F0F0F0Fu;
    q[6] = (qb.z >> shift) & 0x0F0F0F0Fu;
    q[7] = (qb.w >> shift) & 0x0F0F0F0Fu;
    q4_k_sub_scales(v.v[blk >> 4], e >> 5, d, m);
    offset = 0;
}
