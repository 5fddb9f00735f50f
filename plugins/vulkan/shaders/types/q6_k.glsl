// Q6_K (210 bytes per 256): 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8
// scales (one per 16 elements), fp16 d at byte 208. Each half h (128 elements) has four
// quarters k of 32: quarter k takes nibbles of ql[64h + 32(k&1) + l] (low for k < 2, high
// otherwise) and bits 2k, 2k+1 of qh[32h + l], with scale 8h + l/16 + 2k.  x = d * scale * (q - 32).
#define QK 256u
#define BLOCK_BYTES 210u
vec4 dequant4(Words p, uint blk, uint e) {
    uint h = e >> 7, r = e & 127u, k = r >> 5, l = r & 31u;
    uint ql = load_u32(p, blk + 64u * h + 32u * (k & 1u) + l);
    uint qh = load_u32(p, blk + 128u + 32u * h + l) >> (2u * k);
    vec4 lo = k < 2u ? nibbles_lo(ql) : nibbles_hi(ql);
    vec4 hi = vec4(float(qh & 3u), float((qh >> 8) & 3u), float((qh >> 16) & 3u), float((qh >> 24) & 3u));
    uint sidx = 8u * h + (l >> 4) + 2u * k;
    float sc = float(bitfieldExtract(int(load_u8(p, blk + 192u + sidx)), 0, 8));
    return load_f16(p, blk + 208u) * sc * (lo + 16.0 * hi - 32.0);
}

// 16 elements (one scale's run): 6-bit values as bytes, offset -32, d * scale.
#define HAS_INT8_PART
void int8_part(Words p, uint row, uint c, out uint q[4], out float d, out float m, out int offset) {
    uint blk = row + (c / QK) * BLOCK_BYTES;  // 210-byte blocks: 2-byte aligned
    uint e = c % QK;
    uint h = e >> 7, r = e & 127u, k = r >> 5, l = r & 31u;
    uint ql[4], qh[4];
    load_4words_even(p, blk + 64u * h + 32u * (k & 1u) + l, ql);
    load_4words_even(p, blk + 128u + 32u * h + l, qh);
    uint lo_shift = k < 2u ? 0u : 4u;
    for (uint j = 0u; j < 4u; ++j)
        q[j] = ((ql[j] >> lo_shift) & 0x0F0F0F0Fu) | (((qh[j] >> (2u * k)) & 0x03030303u) << 4);
    float sc = float(bitfieldExtract(int(load_u8(p, blk + 192u + 8u * h + (l >> 4) + 2u * k)), 0, 8));
    d = load_f16(p, blk + 208u) * sc;
    m = 0.0;
    offset = -32;
}
