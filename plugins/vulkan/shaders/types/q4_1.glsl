// Q4_1 (20 bytes): fp16 d, fp16 m, 16 bytes of nibbles (as Q4_0);  x = d * q + m.
#define QK 32u
#define BLOCK_BYTES 20u
vec4 dequant4(Words p, uint blk, uint e) {
    uint q = load_u32(p, blk + 4u + (e & 15u));
    vec4 v = e < 16u ? nibbles_lo(q) : nibbles_hi(q);
    return load_f16(p, blk) * v + load_f16(p, blk + 2u);
}
