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
