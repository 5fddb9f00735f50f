// The avx512 kernel table: compiled with AVX-512 F/BW/VL/VNNI flags (plugins/cpu/CMakeLists.txt); used only when CPUID reports them.
#include <apr/backend.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "block_formats.hpp"
#include "half_float.hpp"
#include "kernels.hpp"
#include "simd_avx512.hpp"

namespace apr_cpu {
namespace {
using V = Avx512Ops;
#include "kernels_impl.inl"
}  // namespace

const KernelTable& avx512_kernels() {
    static const KernelTable table{"avx512", matmul_rows, dequantize_row, dot_f32, axpy_f32};
    return table;
}

}  // namespace apr_cpu
