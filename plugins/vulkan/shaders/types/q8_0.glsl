// Q8_0 (34 bytes): fp16 d, int8 q[32];  x = d * q.
#define QK 32u
#define BLOCK_BYTES 34u
vec4 dequant4(Words p, uint blk, uint e) {
    return load_f16(p, blk) * bytes_s(load_u32(p, blk + 2u + e));
}
