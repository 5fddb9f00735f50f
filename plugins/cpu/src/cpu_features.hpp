// What this CPU can run, read from CPUID (and XGETBV: the OS must save the wide registers),
// and which kernel path the plugin uses: the best the CPU supports, or the one APR_CPU_ISA
// names (scalar | avx2 | avx512; for tests and comparisons).
#pragma once

#include <string>

#include "kernels.hpp"

namespace apr_cpu {

struct CpuFeatures {
    bool avx2 = false, fma = false, f16c = false;
    bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false;

    bool has_avx2_path() const { return avx2 && fma && f16c; }
    bool has_avx512_path() const { return has_avx2_path() && avx512f && avx512bw && avx512vl && avx512vnni; }
    // "AVX2 FMA F16C AVX512F ..." (features present), or "no SIMD extensions".
    std::string describe() const;
};

const CpuFeatures& cpu_features();

// The kernel path to use. Throws std::runtime_error when APR_CPU_ISA names an unknown path or
// one this CPU cannot run.
const KernelTable& select_kernels();

}  // namespace apr_cpu
