#version 450
// The SwiGLU gate, in place: g = silu(g) * u over n floats.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
#include "common.glsl"

layout(push_constant) uniform Params {
    uvec2 g;
    uvec2 u;
    uint n;
} pc;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 256u;
    if (i >= pc.n) return;
    Floats G = Floats(pc.g);
    float g = G.f[i];
    G.f[i] = g / (1.0 + exp(-g)) * Floats(pc.u).f[i];
}
