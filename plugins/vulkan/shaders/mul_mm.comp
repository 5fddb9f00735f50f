#version 450
// Prefill mat-mat: Y[t][row] = W[row] . X[t] (+ bias[row]) for a tile of TM weight rows x TN
// tokens per workgroup. The reduction dimension is walked in chunks of TK elements: the
// workgroup dequantizes the TM x TK weight chunk and loads the TN x TK activation chunk into
// shared memory once, then each invocation computes a 4 x 4 block of outputs (4 rows x 4
// tokens) from there. Each weight byte is read once per TN tokens. f32 accumulation.
// With ACCUMULATE in flags the result is added to y (the residual stream); with SWIGLU the
// input is the feed-forward gate silu(x) * up, computed as it is read.
#extension GL_GOOGLE_include_directive : require
#define WG 256u
layout(local_size_x = 256) in;
#include "common.glsl"
#include "weight_type.glsl"
#include "swiglu.glsl"

#define TM 64u
#define TN 64u
#define TK 32u
#define TK4 (TK / 4u)
#define FLAG_ACCUMULATE 1u
#define FLAG_BIAS 2u

layout(push_constant) uniform Params {
    uvec2 w;       // weight matrix: rows x ne0, rows of whole blocks
    uvec2 x;       // activations [n_tokens][ne0] f32
    uvec2 y;       // output [n_tokens][rows] f32
    uvec2 bias;    // [rows] f32 when FLAG_BIAS
    uvec2 up;      // with FLAG_SWIGLU: the input is silu(x) * up, elementwise ([n_tokens][ne0] f32)
    uvec2 x_scales;    // unused here: the push-constant block is mul_mat.comp's
    uvec2 rope_table;  // unused here
    uint ne0;
    uint rows;
    uint n_tokens;
    uint flags;
} pc;

shared vec4 w_s[TM][TK4 + 1u];  // +1: consecutive rows start in different banks
shared vec4 x_s[TN][TK4 + 1u];

void main() {
    uint wg = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint row0 = wg * TM;
    if (row0 >= pc.rows) return;  // uniform over the workgroup
    uint t0 = gl_WorkGroupID.z * TN;
    uint tid = gl_LocalInvocationIndex;
    uint r_base = (tid % 16u) * 4u;  // this invocation's 4 rows within the tile
    uint t_base = (tid / 16u) * 4u;  // and its 4 tokens

    Words W = Words(pc.w);
    Vec4s X = Vec4s(pc.x);
    uint row_bytes = (pc.ne0 / QK) * BLOCK_BYTES;
    uint x_stride = pc.ne0 / 4u;

    vec4 acc[4];  // acc[i][j]: row r_base + i, token t_base + j
    for (uint i = 0u; i < 4u; ++i) acc[i] = vec4(0.0);

    for (uint k0 = 0u; k0 < pc.ne0; k0 += TK) {
        for (uint i = tid; i < TM * TK4; i += WG) {
            uint r = i / TK4, grp = i % TK4;
            uint c = k0 + grp * 4u;
            vec4 v = vec4(0.0);
            if (c < pc.ne0) {
                uint row = min(row0 + r, pc.rows - 1u);  // a partial last tile recomputes a valid row
                v = dequant4(W, row * row_bytes + (c / QK) * BLOCK_BYTES, c % QK);
            }
            w_s[r][grp] = v;
        }
        for (uint i = tid; i < TN * TK4; i += WG) {
            uint t = i / TK4, grp = i % TK4;
            uint c = k0 + grp * 4u;
            x_s[t][grp] = (t0 + t < pc.n_tokens && c < pc.ne0) ? load_input(X, pc.up, pc.flags, (t0 + t) * x_stride + c / 4u)
                                                               : vec4(0.0);
        }
        barrier();
        for (uint g = 0u; g < TK4; ++g) {
            vec4 wv0 = w_s[r_base][g], wv1 = w_s[r_base + 1u][g], wv2 = w_s[r_base + 2u][g], wv3 = w_s[r_base + 3u][g];
            for (uint j = 0u; j < 4u; ++j) {
                vec4 xv = x_s[t_base + j][g];
                acc[0][j] += dot(wv0, xv);
                acc[1][j] += dot(wv1, xv);
                acc[2][j] += dot(wv2, xv);
                acc[3][j] += dot(wv3, xv);
            }
        }
        barrier();
    }

    Floats Y = Floats(pc.y);
    for (uint i = 0u; i < 4u; ++i) {
        uint row = row0 + r_base + i;
        if (row >= pc.rows) break;
        float b = (pc.flags & FLAG_BIAS) != 0u ? Floats(pc.bias).f[row] : 0.0;
        for (uint j = 0u; j < 4u; ++j) {
            uint t = t0 + t_base + j;
            if (t >= pc.n_tokens) break;
            uint idx = t * pc.rows + row;
            float v = acc[i][j] + b;
            Y.f[idx] = (pc.flags & FLAG_ACCUMULATE) != 0u ? Y.f[idx] + v : v;
        }
    }
}
