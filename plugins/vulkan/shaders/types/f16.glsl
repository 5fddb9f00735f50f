// F16: IEEE half floats; a "block" is 4 of them (8 bytes, 8-aligned since rows are whole blocks).
#define QK 4u
#define BLOCK_BYTES 8u
vec4 dequant4(Words p, uint blk, uint e) {
    uint w = blk >> 2;
    return vec4(unpackHalf2x16(p.w[w]), unpackHalf2x16(p.w[w + 1u]));
}
