// Selects the decoding of the weight type the shader variant is compiled for (-DWEIGHT_<TYPE>).
// Each types/<type>.glsl defines:
//   QK            elements per block
//   BLOCK_BYTES   bytes per block
//   vec4 dequant4(Words p, uint blk, uint e)
//                 elements e .. e+3 (e a multiple of 4, < QK) of the block starting at byte blk.
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
