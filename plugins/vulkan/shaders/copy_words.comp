#version 450
// The device copy rate's copy (vulkan_copy_rate.cpp): dst = src, 16 bytes per invocation and
// step, in a grid-stride loop. A shader copy, not vkCmdCopyBuffer: on a compute queue the
// driver may take a slow path for transfer commands (NVIDIA's measured ~0.85 TB/s on an H200
// whose shaders stream ~4 TB/s), and what apr-bench compares with is what shaders can stream.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
#include "common.glsl"

layout(buffer_reference, std430, buffer_reference_align = 16) writeonly buffer UVec4sOut { uvec4 v[]; };

layout(push_constant) uniform Params {
    uvec2 src;    // n 16-byte words
    uvec2 dst;    // n 16-byte words
    uint n;
    uint stride;  // invocations in the whole dispatch
} pc;

void main() {
    UVec4s src = UVec4s(pc.src);
    UVec4sOut dst = UVec4sOut(pc.dst);
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += pc.stride) dst.v[i] = src.v[i];
}
