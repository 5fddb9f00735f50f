// Q5_0 (22 bytes): fp16 d, 32 bits qh (bit j = fifth bit of element j), 16 bytes of nibbles
// (as Q4_0);  x = d * (q - 16).
#define QK 32u
#define BLOCK_BYTES 22u
vec4 dequant4(Words p, uint blk, uint e) {
    uint qh = load_u32(p, blk + 2u);
    uint q = load_u32(p, blk + 6u + (e & 15u));
    vec4 v = (e < 16u ? nibbles_lo(q) : nibbles_hi(q)) + 16.0 * bits4(qh, e);
    return load_f16(p, blk) * (v - 16.0);
}
