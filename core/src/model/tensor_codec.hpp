// Converting tensor rows between f32 and the file's block formats (the apr_tensor_type values):
// dequantization for the reference forward and for embeddings, quantization for the GGUF
// writer. Plain scalar code: this is the core's definition of what the bytes mean.
#pragma once

#include <cstddef>
#include <cstdint>

namespace apr {

float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);   // round to nearest even
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);   // round to nearest even

// Bytes taken by a row of n elements of `type`; throws std::invalid_argument if n is not a whole
// number of blocks or the type is unsupported.
size_t row_size(uint32_t type, int64_t n);

// n elements of `type` at src -> n floats at dst. n must be a whole number of blocks.
void dequantize_row(uint32_t type, const void* src, float* dst, int64_t n);

// n floats at src -> n elements of `type` at dst (row_size(type, n) bytes).
void quantize_row(uint32_t type, const float* src, void* dst, int64_t n);

}  // namespace apr
