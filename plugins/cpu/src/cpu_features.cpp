#include "cpu_features.hpp"

#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define APR_CPU_X86 1
#endif

namespace apr_cpu {
namespace {

#ifdef APR_CPU_X86
uint64_t read_xcr0() {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

CpuFeatures detect() {
    CpuFeatures f;
#ifdef APR_CPU_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool osxsave = c & (1u << 27), avx = c & (1u << 28);
    const bool fma = c & (1u << 12), f16c = c & (1u << 29);
    if (!osxsave || !avx) return f;
    const uint64_t xcr0 = read_xcr0();
    const bool os_ymm = (xcr0 & 0x6) == 0x6;      // SSE and AVX state
    const bool os_zmm = (xcr0 & 0xe6) == 0xe6;    // plus opmask and both ZMM halves
    if (!os_ymm) return f;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    f.avx2 = b & (1u << 5);
    f.fma = fma;
    f.f16c = f16c;
    if (os_zmm) {
        f.avx512f = b & (1u << 16);
        f.avx512bw = b & (1u << 30);
        f.avx512vl = b & (1u << 31);
        f.avx512vnni = c & (1u << 11);
    }
#endif
    return f;
}

}  // namespace

std::string CpuFeatures::describe() const {
    std::string s;
    auto add = [&s](bool have, const char* name) {
        if (!have) return;
        if (!s.empty()) s += ' ';
        s += name;
    };
    add(avx2, "AVX2");
    add(fma, "FMA");
    add(f16c, "F16C");
    add(avx512f, "AVX512F");
    add(avx512bw, "AVX512BW");
    add(avx512vl, "AVX512VL");
    add(avx512vnni, "AVX512VNNI");
    return s.empty() ? "no SIMD extensions" : s;
}

const CpuFeatures& cpu_features() {
    static const CpuFeatures features = detect();
    return features;
}

const KernelTable& select_kernels() {
    const CpuFeatures& f = cpu_features();
    const char* forced = std::getenv("APR_CPU_ISA");
    if (forced && *forced) {
        const std::string isa = forced;
        if (isa == "scalar") return scalar_kernels();
#ifdef APR_CPU_X86
        if (isa == "avx2") {
            if (!f.has_avx2_path()) throw std::runtime_error("APR_CPU_ISA=avx2 but this CPU lacks AVX2/FMA/F16C (has: " + f.describe() + ")");
            return avx2_kernels();
        }
        if (isa == "avx512") {
            if (!f.has_avx512_path())
                throw std::runtime_error("APR_CPU_ISA=avx512 but this CPU lacks AVX-512 F/BW/VL/VNNI (has: " + f.describe() + ")");
            return avx512_kernels();
        }
#endif
        throw std::runtime_error("APR_CPU_ISA='" + isa + "' is not one of scalar, avx2, avx512");
    }
#ifdef APR_CPU_X86
    if (f.has_avx512_path()) return avx512_kernels();
    if (f.has_avx2_path()) return avx2_kernels();
#endif
    return scalar_kernels();
}

}  // namespace apr_cpu
