#version 450
// Prefill mat-mat: Y[t][row] = W[row] . X[t] (+ bias[row]) for a tile of TM weight rows x TN
// tokens per workgroup. The reduction dimension is walked in chunks of TK elements: the
// workgroup dequantizes the TM x TK weight chunk and loads the TN x TK activation chunk into
// shared memory once, then every invocation computes TM*TN/WG outputs from there. Each weight
// byte is read once per TN tokens, each activation once per TM rows. f32 accumulation.
// With ACCUMULATE in flags the result is added to y (the residual stream).
#extension GL_GOOGLE_include_directive : require
#define WG 128u
layout(local_size_x = 128) in;
#include "common.glsl"
#include "weight_type.glsl"

#define TM 64u
#define TN 16u
#define TK 32u
#define TN_PER (TN * TM / WG)  // tokens per invocation (8)
#define FLAG_ACCUMULATE 1u
#define FLAG_BIAS 2u

layout(push_constant) uniform Params {
    uvec2 w;       // weight matrix: rows x ne0, rows of whole blocks
    uvec2 x;       // activations [n_tokens][ne0] f32
    uvec2 y;       // output [n_tokens][rows] f32
    uvec2 bias;    // [rows] f32 when FLAG_BIAS
    uint ne0;
    uint rows;
    uint n_tokens;
    uint flags;
} pc;

shared float w_s[TM][TK + 1u];  // +1: rows land in different banks
shared vec4 x_s[TN][TK / 4u];

void main() {
    uint wg = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint row0 = wg * TM;
    if (row0 >= pc.rows) return;  // uniform over the workgroup
    uint t0 = gl_WorkGroupID.z * TN;
    uint tid = gl_LocalInvocationIndex;
    uint my_row = tid % TM;            // the output row this invocation computes
    uint my_t = (tid / TM) * TN_PER;   // its first token within the tile

    Words W = Words(pc.w);
    Vec4s X = Vec4s(pc.x);
    uint row_bytes = (pc.ne0 / QK) * BLOCK_BYTES;
    uint x_stride = pc.ne0 / 4u;

    float acc[TN_PER];
    for (uint j = 0u; j < TN_PER; ++j) acc[j] = 0.0;

    for (uint k0 = 0u; k0 < pc.ne0; k0 += TK) {
        // Weight chunk: TM rows x TK/4 groups of 4, adjacent invocations on adjacent groups.
        for (uint i = tid; i < TM * (TK / 4u); i += WG) {
            uint r = i / (TK / 4u), grp = i % (TK / 4u);
            uint c = k0 + grp * 4u;
            vec4 v = vec4(0.0);
            if (c < pc.ne0) {
                uint row = min(row0 + r, pc.rows - 1u);
                v = dequant4(W, row * row_bytes + (c / QK) * BLOCK_BYTES, c % QK);
            }
            w_s[r][grp * 4u] = v.x;
            w_s[r][grp * 4u + 1u] = v.y;
            w_s[r][grp * 4u + 2u] = v.z;
            w_s[r][grp * 4u + 3u] = v.w;
        }
        // Activation chunk: TN tokens x TK/4 groups.
        for (uint i = tid; i < TN * (TK / 4u); i += WG) {
            uint t = i / (TK / 4u), grp = i % (TK / 4u);
            uint c = k0 + grp * 4u;
            x_s[t][grp] = (t0 + t < pc.n_tokens && c < pc.ne0) ? X.v[(t0 + t) * x_stride + c / 4u] : vec4(0.0);
        }
        barrier();
        for (uint g = 0u; g < TK / 4u; ++g) {
            vec4 wv = vec4(w_s[my_row][g * 4u], w_s[my_row][g * 4u + 1u], w_s[my_row][g * 4u + 2u],
                           w_s[my_row][g * 4u + 3u]);
            for (uint j = 0u; j < TN_PER; ++j) acc[j] += dot(wv, x_s[my_t + j][g]);
        }
        barrier();
    }

    uint row = row0 + my_row;
    if (row >= pc.rows) return;
    float b = (pc.flags & FLAG_BIAS) != 0u ? Floats(pc.bias).f[row] : 0.0;
    Floats Y = Floats(pc.y);
    for (uint j = 0u; j < TN_PER; ++j) {
        uint t = t0 + my_t + j;
        if (t >= pc.n_tokens) break;
        uint idx = t * pc.rows + row;
        float v = acc[j] + b;
        Y.f[idx] = (pc.flags & FLAG_ACCUMULATE) != 0u ? Y.f[idx] + v : v;
    }
}
