// Selects the decoding of the weight type the shader variant is compiled for (-DWEIGHT_<TYPE>).
// Each types/<type>.glsl defines:
//   QK            elements per block
//   BLOCK_BYTES   bytes per block
//   vec4 dequant4(Words p, uint blk, uint e)
//                 elements e .. e+3 (e a multiple of 4, < QK) of the block starting at byte blk.
// and may define HAS_DEQUANT16 with its own dequant16 (below) reading whole words at once.
// Types whose values are d * (q + offset) + m with small integers q may define HAS_INT8_PART and
//   void int8_part(Words p, uint row, uint c, out uint q[4], out float d, out float m, out int offset)
//                 elements c .. c+15 of the row starting at byte `row` (c a multiple of 16) as
//                 16 signed bytes q, with their scale d, float term m and integer offset,
// for products with int8 activations (mul_mat.comp's INT8_ACTIVATIONS variants; the
// activations come in blocks of QK: Q8_0 for 32-element types, Q8_K for 256). Types whose
// runs of 32 elements share one d, m and offset may also define HAS_INT8_BLOCK32 and
//   void int8_block32(Words p, uint row, uint c, out uint q[8], out float d, out float m, out int offset)
//                 the same for elements c .. c+31 (c a multiple of 32), which mul_mat.comp then
//                 takes 32 at a time (one read of the block header per 32 elements, not per 16).
#if defined(WEIGHT_F32)
#include "types/f32.glsl"
#elif defined(WEIGHT_F16)
#include "types/f16.glsl"
#elif defined(WEIGHT_BF16)
#include "types/bf16.glsl"
#elif defined(WEIGHT_Q8_0)
#include "types/q8_0.glsl"
#elif defined(WEIGHT_Q4_0)
#include "types/q4_0.glsl"
#elif defined(WEIGHT_Q4_1)
#include "types/q4_1.glsl"
#elif defined(WEIGHT_Q5_0)
#include "types/q5_0.glsl"
#elif defined(WEIGHT_Q5_1)
#include "types/q5_1.glsl"
#elif defined(WEIGHT_Q4_K)
#include "types/q4_k.glsl"
#elif defined(WEIGHT_Q5_K)
#include "types/q5_k.glsl"
#elif defined(WEIGHT_Q6_K)
#include "types/q6_k.glsl"
#else
#error "no WEIGHT_<TYPE> defined"
#endif

// Elements c .. c+15 (c a multiple of 16, c + 16 <= the row length) of the row starting at byte
// `row`, as v[0..3]. Types whose blocks hold 16 or more elements keep all 16 in one block, so
// the block header (scales) is read once; types may replace this with a faster decoding.
#ifndef HAS_DEQUANT16
void dequant16(Words p, uint row, uint c, out vec4 v[4]) {
    if (QK >= 16u) {  // a compile-time constant
        uint blk = row + (c / QK) * BLOCK_BYTES, e = c % QK;
        for (uint j = 0u; j < 4u; ++j) v[j] = dequant4(p, blk, e + 4u * j);
    } else {
        for (uint j = 0u; j < 4u; ++j) {
            uint cc = c + 4u * j;
            v[j] = dequant4(p, row + (cc / QK) * BLOCK_BYTES, cc % QK);
        }
    }
}
#endif
