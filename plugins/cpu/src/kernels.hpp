// The compute kernels of one instruction-set path, as a table of plain function pointers.
// The math is written once (kernels_impl.inl) over a small vector-operations type; each ISA
// translation unit (kernels_scalar.cpp, kernels_avx2.cpp, kernels_avx512.cpp) instantiates it
// with its own operations and is the only code compiled with that ISA's flags.
#pragma once

#include <cstddef>
#include <cstdint>

namespace apr_cpu {

// out[t * out_stride + r] = dot(weight row r, activation row t) for rows [r0, r1) and every t.
struct MatmulJob {
    uint32_t type;          // weight type (apr_tensor_type)
    const uint8_t* weight;  // row r starts at weight + r * row_bytes
    size_t row_bytes;
    // Q4_0 / Q8_0 only, optional: the same matrix regrouped (block_formats.hpp, kGroupRows); when
    // set, the row range of every call starts and ends on a group boundary.
    const uint8_t* grouped = nullptr;
    int64_t n_in;           // elements per row (the reduction length)
    const uint8_t* act;     // activation row t (already converted: activation_quant.hpp) at act + t * act_stride
    size_t act_stride;
    int64_t n_tok;
    float* out;
    int64_t out_stride;
};

struct KernelTable {
    const char* isa;  // "scalar", "avx2", "avx512"
    void (*matmul_rows)(const MatmulJob& job, int64_t r0, int64_t r1);
    // One row of n elements of `type` -> n floats (embedding lookups).
    void (*dequantize_row)(uint32_t type, const void* row, float* dst, int64_t n);
    float (*dot_f32)(const float* a, const float* b, int64_t n);
    void (*axpy_f32)(float a, const float* x, float* y, int64_t n);  // y += a * x
    // The same with fp16 a / x (an f16 KV cache).
    float (*dot_f16)(const uint16_t* a, const float* b, int64_t n);
    void (*axpy_f16)(float a, const uint16_t* x, float* y, int64_t n);
};

const KernelTable& scalar_kernels();
// Only callable when the CPU has the features (cpu_features.hpp checks them).
const KernelTable& avx2_kernels();
const KernelTable& avx512_kernels();

}  // namespace apr_cpu
