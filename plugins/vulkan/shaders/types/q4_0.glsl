// Q4_0 (18 bytes): fp16 d, 16 bytes of nibbles; element j < 16 is the low nibble of byte j,
// element j + 16 the high nibble;  x = d * (q - 8).
#define QK 32u
#define BLOCK_BYTES 18u
vec4 dequant4(Words p, uint blk, uint e) {
    uint q = load_u32(p, blk + 2u + (e & 15u));
    vec4 v = e < 16u ? nibbles_lo(q) : nibbles_hi(q);
    return load_f16(p, blk) * (v - 8.0);
}

// 16 elements: one half of the block's nibbles; the 16 quant bytes as four realigned words.
#define HAS_DEQUANT16
void dequant16(Words p, uint row, uint c, out vec4 v[4]) {
    uint blk = row + (c / QK) * BLOCK_BYTES;
    uint q[4];
    load_4words_even(p, blk + 2u, q);
    float d = load_f16(p, blk);
    bool hi = (c % QK) >= 16u;
    for (uint j = 0u; j < 4u; ++j) v[j] = d * ((hi ? nibbles_hi(q[j]) : nibbles_lo(q[j])) - 8.0);
}

// 16 elements as bytes 0..15 (one nibble each) with offset -8.
#define HAS_INT8_PART
void int8_part(Words p, uint row, uint c, out uint q[4], out float d, out float m, out int offset) {
    uint blk = row + (c / QK) * BLOCK_BYTES;
    load_4words_even(p, blk + 2u, q);
    uint shift = (c % QK) >= 16u ? 4u : 0u;
    for (uint j = 0u; j < 4u; ++j) q[j] = (q[j] >> shift) & 0x0F0F0F0Fu;
    d = load_f16(p, blk);
    m = 0.0;
    offset = -8;
}

// A whole block (c a multiple of 32) for int8 products: its 32 nibbles as bytes q[0..7] (low
// nibbles: elements 0..15, high: 16..31) with offset -8. The 18 bytes of an even-aligned block
// lie in the five words from blk / 4 on (the scale in the first, at either half), so the two
// halves' reads of int8_part become one set of five.
#define HAS_INT8_BLOCK32
void int8_block32(Words p, uint row, uint c, out uint q[8], out float d, out float m, out int offset) {
    uint blk = row + (c / QK) * BLOCK_BYTES;
    uint w = blk >> 2;
    uint a0 = p.w[w], a1 = p.w[w + 1u], a2 = p.w[w + 2u], a3 = p.w[w + 3u], a4 = p.w[w + 4u];
    bool odd_half = (blk & 2u) != 0u;  // the scale is a0's high half, the quants start at a1
    uint b0 = odd_half ? a1 : (a0 >> 16) | (a1 << 16);
    uint b1 = odd_half ? a2 : (a1 >> 16) | (a2 << 16);
    uint b2 = odd_half ? a3 : (a2 >> 16) | (a3 << 16);
    uint b3 = odd_half ? a4 : (a3 >> 16) | (a4 << 16);
    q[0] = b0 & 0x0F0F0F0Fu;
    q[1] = b1 & 0x0F0F0F0Fu;
    q[2] = b2 & 0x0F0F0F0Fu;
    q[3] = b3 & 0x0F0F0F0Fu;
    q[4] = (b0 >> 4) & 0x0F0F0F0Fu;
    q[5] = (b1 >> 4) & 0x0F0F0F0Fu;
    q[6] = (b2 >> 4) & 0x0F0F0F0Fu;
    q[7] = (b3 >> 4) & 0x0F0F0F0Fu;
    d = unpackHalf2x16(odd_half ? a0 >> 16 : a0 & 0xFFFFu).x;
    m = 0.0;
    offset = -8;
}
