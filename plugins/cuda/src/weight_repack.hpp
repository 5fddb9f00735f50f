// Weight layouts the backend regroups at upload so that the decode mat-vec streams them with
// aligned 16-byte loads (kernels.hpp's own types). Host-only; the values are unchanged, only
// their order inside a row, so every kernel that decodes the new type reads the same numbers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace apr_cuda {

// The type a `type` matrix of `cols` columns is stored as on the device: kTypeQ4_0x8 for Q4_0
// rows of whole 256-element runs, kTypeQ4_Kx8 for Q4_K (unless APR_CUDA_Q4K_REGROUP=0, kept
// for measuring against the stored layout), else `type` itself.
uint32_t device_weight_type(uint32_t type, uint32_t cols);

// Copies `rows` rows of `row_bytes` from src (stored as `type`) to dst (stored as
// device_weight_type(type, cols)); dst and src must not overlap.
void repack_rows(uint32_t type, uint32_t cols, const uint8_t* src, uint8_t* dst, size_t rows, size_t row_bytes);

}  // namespace apr_cuda
