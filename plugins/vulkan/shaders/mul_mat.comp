#version 450
// y[t][row] = W[row] . x[t] (+ bias[row]) for the tokens t of one tile, W in its file type.
// TILE_N = 1 is the decode mat-vec; larger TILE_N is the prefill mat-mat, where one workgroup
// dequantizes each weight group once and applies it to TILE_N token columns.
// With ACCUMULATE in flags the result is added to y (the residual stream).
#extension GL_GOOGLE_include_directive : require
#define WG 64u
layout(local_size_x = 64) in;
#include "common.glsl"
#include "reduce.glsl"
#include "weight_type.glsl"

#ifndef TILE_N
#define TILE_N 1u
#endif
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

void main() {
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= pc.rows) return;  // uniform over the workgroup
    uint t0 = gl_WorkGroupID.z * TILE_N;
    uint tid = gl_LocalInvocationIndex;

    Words W = Words(pc.w);
    Vec4s X = Vec4s(pc.x);
    uint row_base = row * ((pc.ne0 / QK) * BLOCK_BYTES);
    uint n_groups = pc.ne0 / 4u;
    uint x_stride = pc.ne0 / 4u;

    float acc[TILE_N];
    for (uint t = 0u; t < TILE_N; ++t) acc[t] = 0.0;

    for (uint g = tid; g < n_groups; g += WG) {
        uint c = g * 4u;
        vec4 wv = dequant4(W, row_base + (c / QK) * BLOCK_BYTES, c % QK);
        for (uint t = 0u; t < TILE_N; ++t) {
            if (t0 + t < pc.n_tokens) acc[t] += dot(wv, X.v[(t0 + t) * x_stride + g]);
        }
    }

    Floats Y = Floats(pc.y);
    float b = (pc.flags & FLAG_BIAS) != 0u ? Floats(pc.bias).f[row] : 0.0;
    for (uint t = 0u; t < TILE_N; ++t) {
        float s = wg_sum(acc[t]);
        if (tid == 0u && t0 + t < pc.n_tokens) {
            uint i = (t0 + t) * pc.rows + row;
            float v = s + b;
            Y.f[i] = (pc.flags & FLAG_ACCUMULATE) != 0u ? Y.f[i] + v : v;
        }
    }
}
