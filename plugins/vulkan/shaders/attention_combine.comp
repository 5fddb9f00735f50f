#version 450
// Merges attention_split.comp's partial results of each query head (attention_combine.glsl),
// one workgroup per head. With -DROUND_Q8_0 the variant also rounds the head for the output
// projection (attention_combine.glsl).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#define COMBINE_LANES 64u
#include "common.glsl"
#ifdef ROUND_Q8_0
#include "half_float.glsl"
#include "exact_division.glsl"
#include "round_math.glsl"
#endif

layout(push_constant) uniform Params {
    uvec2 part;     // [n_head][n_splits][head_dim + 4]: vec4(m, l, 0, 0) then the sums
    uvec2 out_;     // [n_head * head_dim]
#ifdef ROUND_Q8_0
    uvec2 rounded;  // [n_head * head_dim] f32
    uvec2 q8;       // [n_head * head_dim] int8 when not 0
    uvec2 q8d;      // [n_head * head_dim / 32] f32
#endif
    uint n_splits;
    uint head_dim;
} pc;

#include "attention_combine.glsl"

void main() {
#ifdef ROUND_Q8_0
    combine_head(gl_WorkGroupID.x, gl_LocalInvocationIndex, pc.part, pc.out_, pc.rounded, pc.q8, pc.q8d, pc.n_splits,
                 pc.head_dim);
#else
    combine_head(gl_WorkGroupID.x, gl_LocalInvocationIndex, pc.part, pc.out_, uvec2(0), uvec2(0), uvec2(0),
                 pc.n_splits, pc.head_dim);
#endif
}
