// The end of the prefill kernels (matmul.cu's tiles and matmul_int8_pipelined.cu's): a warp's
// m16n8 accumulator tiles written to y [token][row], with the optional bias and residual.
#pragma once

// acc[i][j][e] is element e of the warp's tile (i, j): rows row0 + 16i + g (+8 for e >= 2), token
// tok0 + 8j + 2*t4 (+1 for odd e), as mma.sync's accumulator fragment lays them out (g = lane / 4,
// t4 = lane % 4). Elements past `rows` or `n_tokens` (partial edge tiles) are not written.
template <int NJ>
__device__ __forceinline__ void store_mma_tiles(const float (&acc)[2][NJ][4], int row0, int tok0, int g, int t4,
                                                int rows, int n_tokens, float* y, int ldy, const float* bias,
                                                const float* residual, int ldr) {
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < NJ; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int r = row0 + 16 * i + g + 8 * (e >> 1);
                const int tok = tok0 + 8 * j + 2 * t4 + (e & 1);
                if (r >= rows || tok >= n_tokens) continue;
                float v = acc[i][j][e];
                if (bias) v += bias[r];
                if (residual) v += residual[size_t(tok) * ldr + r];
                y[size_t(tok) * ldy + r] = v;
            }
}
