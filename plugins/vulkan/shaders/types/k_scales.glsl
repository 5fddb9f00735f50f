// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block, packed in the 12
// bytes at `scales`: sub-blocks 0-3 keep theirs in the low 6 bits of bytes j and j+4; sub-blocks
// 4-7 split theirs between a nibble of byte j+4 and the top 2 bits of bytes j-4 and j.
vec2 k_scale_min(Words p, uint scales, uint j) {
    if (j < 4u) {
        return vec2(float(load_u8(p, scales + j) & 63u), float(load_u8(p, scales + j + 4u) & 63u));
    }
    uint b = load_u8(p, scales + j + 4u);
    uint sc = (b & 0xFu) | ((load_u8(p, scales + j - 4u) >> 6) << 4);
    uint m = (b >> 4) | ((load_u8(p, scales + j) >> 6) << 4);
    return vec2(float(sc), float(m));
}
