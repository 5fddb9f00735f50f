// Converting an f32 activation row into what the dot products read, exactly as ggml's CPU
// matmul converts src1 to the weight's vec_dot type. One implementation for every ISA path,
// so all paths see bit-identical activations.
#pragma once

#include <cstdint>

#include "block_formats.hpp"

namespace apr_cpu {

// n floats at x -> act_row_bytes(kind, n) bytes at dst. n must be a multiple of the kind's block.
void quantize_activation(ActKind kind, const float* x, int64_t n, void* dst);

}  // namespace apr_cpu
