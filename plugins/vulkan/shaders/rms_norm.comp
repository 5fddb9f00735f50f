#version 450
// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, one workgroup per row of n floats.
// Rows are contiguous; x and y may be the same buffer (each invocation rewrites what it read).
#extension GL_GOOGLE_include_directive : require
#define WG 128u
layout(local_size_x = 128) in;
#include "common.glsl"
#include "reduce.glsl"

layout(push_constant) uniform Params {
    uvec2 x;
    uvec2 y;
    uvec2 weight;  // [n] f32
    uint n;
    uint n_rows;
    float eps;
} pc;

void main() {
    uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (r >= pc.n_rows) return;
    uint tid = gl_LocalInvocationIndex;
    Floats X = Floats(pc.x);
    Floats Y = Floats(pc.y);
    Floats Wt = Floats(pc.weight);
    uint base = r * pc.n;
    float ss = 0.0;
    for (uint i = tid; i < pc.n; i += WG) {
        float v = X.f[base + i];
        ss += v * v;
    }
    float scale = inversesqrt(wg_sum(ss) / float(pc.n) + pc.eps);
    for (uint i = tid; i < pc.n; i += WG) Y.f[base + i] = X.f[base + i] * scale * Wt.f[i];
}
