// F32: plain floats; a "block" is 4 of them so that every type shares one interface.
#define QK 4u
#define BLOCK_BYTES 16u
vec4 dequant4(Words p, uint blk, uint e) {
    uint w = blk >> 2;
    return vec4(uintBitsToFloat(p.w[w]), uintBitsToFloat(p.w[w + 1u]), uintBitsToFloat(p.w[w + 2u]),
                uintBitsToFloat(p.w[w + 3u]));
}
