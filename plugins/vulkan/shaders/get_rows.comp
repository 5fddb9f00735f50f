#version 450
// Token embeddings: y[t] = row ids[t] of the embedding matrix, dequantized exactly.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "common.glsl"
#include "weight_type.glsl"

layout(push_constant) uniform Params {
    uvec2 w;    // embedding matrix [n_vocab][ne0]
    uvec2 ids;  // [n_tokens] int32 token ids (checked against n_vocab by the host)
    uvec2 y;    // [n_tokens][ne0] f32
    uint ne0;
    uint n_tokens;
} pc;

void main() {
    uint g = gl_GlobalInvocationID.x;  // group of 4 elements within the row
    uint t = gl_GlobalInvocationID.y;
    if (g >= pc.ne0 / 4u || t >= pc.n_tokens) return;
    uint row = uint(Ints(pc.ids).i[t]);
    uint c = g * 4u;
    uint blk = row * ((pc.ne0 / QK) * BLOCK_BYTES) + (c / QK) * BLOCK_BYTES;
    Vec4s(pc.y).v[t * (pc.ne0 / 4u) + g] = dequant4(Words(pc.w), blk, c % QK);
}
