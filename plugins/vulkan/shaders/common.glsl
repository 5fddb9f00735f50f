// Shared by every shader: buffers reached through device addresses (push constants carry the
// addresses, so no descriptor sets exist), and byte-level readers for weight blocks, which are
// not 4-byte aligned (a Q4_0 block is 18 bytes) and are therefore read through 32-bit words.
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_buffer_reference_uvec2 : require

layout(buffer_reference, std430, buffer_reference_align = 4) readonly buffer Words { uint w[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer Floats { float f[]; };
layout(buffer_reference, std430, buffer_reference_align = 16) buffer Vec4s { vec4 v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) readonly buffer Ints { int i[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) writeonly buffer WordsOut { uint w[]; };
layout(buffer_reference, std430, buffer_reference_align = 16) readonly buffer UVec4s { uvec4 v[]; };

// Every device buffer is allocated with 16 spare bytes, so reading the word after the last
// one (load_u32 at the end of a tensor) stays inside the allocation.
uint load_u8(Words p, uint byte_off) {
    return (p.w[byte_off >> 2] >> ((byte_off & 3u) * 8u)) & 0xFFu;
}

// byte_off must be even (every fp16 field of every block is).
uint load_u16(Words p, uint byte_off) {
    return (p.w[byte_off >> 2] >> ((byte_off & 2u) * 8u)) & 0xFFFFu;
}

float load_f16(Words p, uint byte_off) {
    return unpackHalf2x16(load_u16(p, byte_off)).x;
}

// Four bytes starting anywhere, little-endian.
uint load_u32(Words p, uint byte_off) {
    uint word = byte_off >> 2;
    uint shift = (byte_off & 3u) * 8u;
    uint lo = p.w[word];
    if (shift == 0u) return lo;
    return (lo >> shift) | (p.w[word + 1u] << (32u - shift));
}

// The four bytes of `q` as unsigned values, and the low / high nibble of each byte.
vec4 bytes_u(uint q) {
    return vec4(float(q & 0xFFu), float((q >> 8) & 0xFFu), float((q >> 16) & 0xFFu), float(q >> 24));
}
vec4 nibbles_lo(uint q) {
    return vec4(float(q & 0xFu), float((q >> 8) & 0xFu), float((q >> 16) & 0xFu), float((q >> 24) & 0xFu));
}
vec4 nibbles_hi(uint q) {
    return nibbles_lo(q >> 4);
}
// The four bytes of `q` as signed int8 values.
vec4 bytes_s(uint q) {
    int s = int(q);
    return vec4(float(bitfieldExtract(s, 0, 8)), float(bitfieldExtract(s, 8, 8)), float(bitfieldExtract(s, 16, 8)),
                float(bitfieldExtract(s, 24, 8)));
}
// Bit `first`, first+1, first+2, first+3 of `bits`, as 0/1 values.
vec4 bits4(uint bits, uint first) {
    uint b = bits >> first;
    return vec4(float(b & 1u), float((b >> 1) & 1u), float((b >> 2) & 1u), float((b >> 3) & 1u));
}

// Four little-endian words starting at byte `off` (a multiple of 2), read as five aligned words
// and realigned: blocks of 18 or 34 bytes put half of their rows at 2 mod 4.
void load_4words_even(Words p, uint off, out uint q[4]) {
    uint w = off >> 2;
    uint a0 = p.w[w], a1 = p.w[w + 1u], a2 = p.w[w + 2u], a3 = p.w[w + 3u], a4 = p.w[w + 4u];
    bool odd_half = (off & 2u) != 0u;
    q[0] = odd_half ? (a0 >> 16) | (a1 << 16) : a0;
    q[1] = odd_half ? (a1 >> 16) | (a2 << 16) : a1;
    q[2] = odd_half ? (a2 >> 16) | (a3 << 16) : a2;
    q[3] = odd_half ? (a3 >> 16) | (a4 << 16) : a3;
}
