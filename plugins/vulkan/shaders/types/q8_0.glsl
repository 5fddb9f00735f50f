// Q8_0 (34 bytes): fp16 d, int8 q[32];  x = d * q.
#define QK 32u
#define BLOCK_BYTES 34u
vec4 dequant4(Words p, uint blk, uint e) {
    return load_f16(p, blk) * bytes_s(load_u32(p, blk + 2u + e));
}

// 16 elements: half of the block's quant bytes, as four realigned words.
#define HAS_DEQUANT16
void dequant16(Words p, uint row, uint c, out vec4 v[4]) {
    uint blk = row + (c / QK) * BLOCK_BYTES;
    uint q[4];
    load_4words_even(p, blk + 2u + c % QK, q);
    float d = load_f16(p, blk);
    for (uint j = 0u; j < 4u; ++j) v[j] = d * bytes_s(q[j]);
}

// 16 elements: the quant bytes as they are.
#define HAS_INT8_PART
void int8_part(Words p, uint row, uint c, out uint q[4], out float d, out float m, out int offset) {
    uint blk = row + (c / QK) * BLOCK_BYTES;
    load_4words_even(p, blk + 2u + c % QK, q);
    d = load_f16(p, blk);
    m = 0.0;
    offset = 0;
}
