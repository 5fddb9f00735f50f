// Q4_0 (18 bytes): fp16 d, 16 bytes of nibbles; element j < 16 is the low nibble of byte j,
// element j + 16 the high nibble;  x = d * (q - 8).
#define QK 32u
#define BLOCK_BYTES 18u
vec4 dequant4(Words p, uint blk, uint e) {
    uint q = load_u32(p, blk + 2u + (e & 15u));
    vec4 v = e < 16u ? nibbles_lo(q) : nibbles_hi(q);
    return load_f16(p, blk) * (v - 8.0);
}
