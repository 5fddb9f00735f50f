// The byte layouts of the weight types the plugin reads (ggml's exact block formats, as they
// sit in a GGUF file) and of the activation blocks the plugin builds before a dot product
// (its own layouts: they never leave the plugin, so scales are kept as f32 that already carry
// ggml's fp16 rounding).
#pragma once

#include <cstddef>
#include <cstdint>

namespace apr_cpu {

// ---- weight blocks (ggml layouts; every 16-bit scale is an fp16 bit pattern) ----------------
struct BlockQ4_0 {  // x = d * (q - 8)
    uint16_t d;
    uint8_t qs[16];  // element j in the low nibble of qs[j], element j+16 in the high nibble
};
struct BlockQ4_1 {  // x = d * q + m
    uint16_t d, m;
    uint8_t qs[16];
};
struct BlockQ5_0 {  // x = d * (q - 16); bit 4 of element j is bit j of qh
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[16];
};
struct BlockQ5_1 {  // x = d * q + m
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[16];
};
struct BlockQ8_0 {  // x = d * q
    uint16_t d;
    int8_t qs[32];
};
// K-quants: super-blocks of 256 elements.
struct BlockQ4_K {  // 8 sub-blocks of 32, 6-bit scale and min each: x = d*sc*q - dmin*m
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[128];  // 4 chunks of 32 bytes: low nibbles = sub-block 2c, high = 2c+1
};
struct BlockQ5_K {  // as Q4_K plus a fifth bit: bit (2c or 2c+1) of qh[l] for element l of the chunk
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[32];
    uint8_t qs[128];
};
struct BlockQ6_K {  // 16 sub-blocks of 16 with int8 scales: x = d * sc * (q - 32)
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;
};
static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34);
// Q4_0 and Q8_0 regrouped by the plugin (weight_repack.hpp): rows in groups of 8, and per
// block column the 8 rows' fp16 scales, then their quant bytes in quads of four rows:
//   Q4_0: 8 x 16 bytes in row order (each as in BlockQ4_0), one 64-byte quad per four rows;
//   Q8_0: per four rows, their bytes 0..15 (16 each, in row order), then their bytes 16..31.
// Either way a quad is read with 64-byte loads whose 16-byte slots are one row each (elements
// 0..15 of the four rows in one register, 16..31 in another once decoded), so decode runs four
// rows per instruction instead of one block per instruction; a group's columns follow each
// other, and groups follow each other, so a chunk of rows is one sequential stream.
inline constexpr int kGroupRows = 8;
inline constexpr size_t kQ4_0GroupColumnBytes = kGroupRows * (2 + 16);
inline constexpr size_t kQ8_0GroupColumnBytes = kGroupRows * (2 + 32);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);

// ---- activation blocks (plugin-internal) ----------------------------------------------------
struct ActQ8_0 {  // ggml's Q8_0 of an activation: d = fp16(amax / 127), q = round_even(x * 127 / amax)
    float d;
    int8_t qs[32];
    // -(q[4k] + .. + q[4k+3]) for k = 0..7: lets Q4_0 / Q5_0 weights take the cheaper unsigned
    // dot product, the offset of their quants applied exactly in int32 lanes.
    int32_t neg_lane_sums[8];
};
struct ActQ8_1 {  // Q8_0 plus s = fp16(d * sum(q)), which multiplies the weight's min term
    float d, s;
    int8_t qs[32];
};
struct ActQ8_K {  // ggml's Q8_K: f32 d, 256 int8, and the sum of each run of 16 q
    float d;
    int8_t qs[256];
    int16_t bsums[16];
};

// What the activation of a matrix product becomes before the dot products, chosen by the
// weight's type exactly as ggml's "vec_dot_type" (see testdata/oracle/README.md).
enum class ActKind : uint8_t {
    F32,        // F32 weights: used as is
    F16_ROUND,  // F16 weights: rounded to fp16 (kept as f32 values)
    BF16_ROUND, // BF16 weights: rounded to bf16 (kept as f32 values)
    Q8_0,       // Q4_0, Q5_0, Q8_0 weights
    Q8_1,       // Q4_1, Q5_1 weights
    Q8_K,       // Q4_K, Q5_K, Q6_K weights
};
inline constexpr int kActKindCount = 6;

// What the plugin knows about one weight type (GGUF type ids, as apr_tensor_type).
struct WeightTypeInfo {
    const char* name;
    uint32_t block_elems;  // elements per block
    uint32_t block_bytes;  // bytes per block
    ActKind act;
};

// nullptr when the plugin cannot read the type.
const WeightTypeInfo* weight_type_info(uint32_t type);

// Bytes taken by one activation row of n elements (n a multiple of the kind's block).
size_t act_row_bytes(ActKind kind, int64_t n);

}  // namespace apr_cpu
