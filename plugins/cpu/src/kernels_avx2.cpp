// The avx2 kernel table: compiled with -mavx2 -mfma -mf16c (plugins/cpu/CMakeLists.txt); used only when CPUID reports them.
#include <apr/backend.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "block_formats.hpp"
#include "half_float.hpp"
#include "kernels.hpp"
#include "simd_avx2.hpp"

namespace apr_cpu {
namespace {
using V = Avx2Ops;
#include "kernels_impl.inl"
}  // namespace

const KernelTable& avx2_kernels() {
    static const KernelTable table{"avx2", matmul_rows, dequantize_row, dot_f32, axpy_f32};
    return table;
}

}  // namespace apr_cpu
