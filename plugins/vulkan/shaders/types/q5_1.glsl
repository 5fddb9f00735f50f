// Q5_1 (24 bytes): fp16 d, fp16 m, 32 bits qh, 16 bytes of nibbles (as Q5_0);  x = d * q + m.
#define QK 32u
#define BLOCK_BYTES 24u
vec4 dequant4(Words p, uint blk, uint e) {
    uint qh = load_u32(p, blk + 4u);
    uint q = load_u32(p, blk + 8u + (e & 15u));
    vec4 v = (e < 16u ? nibbles_lo(q) : nibbles_hi(q)) + 16.0 * bits4(qh, e);
    return load_f16(p, blk) * v + load_f16(p, blk + 2u);
}
