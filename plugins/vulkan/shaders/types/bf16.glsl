// BF16: the upper 16 bits of an f32; a "block" is 4 of them.
#define QK 4u
#define BLOCK_BYTES 8u
vec4 dequant4(Words p, uint blk, uint e) {
    uint w = blk >> 2;
    uint a = p.w[w], b = p.w[w + 1u];
    return vec4(uintBitsToFloat(a << 16), uintBitsToFloat(a & 0xFFFF0000u), uintBitsToFloat(b << 16),
                uintBitsToFloat(b & 0xFFFF0000u));
}
