// The scalar kernel table: the portable path: no ISA flags, runs on any x86-64 (and any other CPU).
#include <apr/backend.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "block_formats.hpp"
#include "half_float.hpp"
#include "kernels.hpp"
#include "simd_scalar.hpp"

namespace apr_cpu {
namespace {
using V = ScalarOps;
#include "kernels_impl.inl"
}  // namespace

const KernelTable& scalar_kernels() {
    static const KernelTable table{"scalar", matmul_rows, dequantize_row, dot_f32, axpy_f32};
    return table;
}

}  // namespace apr_cpu
