// Warming the L2 cache with the next decode product's weights while this product's tail runs.
//
// A decode step is a chain of dependent mat-vecs, each a pure weight stream of 10-50 MB. Each
// launch ends with a tail (the last blocks, the epilogue's last-arriver quantization) and the
// next one starts with a ramp (block launch, the first loads' latency): between the two, DRAM
// idles for several microseconds per product, 160 times per token. The weights of the next
// product do not depend on anything this one computes, so the blocks of this product, once their
// own loads are done, ask the L2 for a slice of the next product's first bytes (one bulk
// prefetch instruction per block: nothing lands in registers or shared memory, and nothing waits
// for it). The next launch then finds those lines in L2 instead of DRAM.
#pragma once

#include <cstddef>
#include <cstdint>

namespace apr_cuda {

// Up to two byte ranges (gate and up are two matrices) whose first `bytes` each product's blocks
// prefetch, split evenly over the launch's blocks. bytes 0: nothing.
struct L2Warm {
    static constexpr int kRanges = 2;
    const uint8_t* p[kRanges] = {nullptr, nullptr};
    uint32_t bytes[kRanges] = {0, 0};
};

#ifdef __CUDACC__
// Called by one thread of each block once the block's own loads are done.
__device__ __forceinline__ void warm_l2_share(const L2Warm& w) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#pragma unroll
    for (int k = 0; k < L2Warm::kRanges; ++k) {
        if (w.bytes[k] == 0) continue;
        // Slices of whole 16-byte units (the instruction's granule and alignment) from the first
        // aligned address on, block b takes slice b.
        const size_t skip = (16 - reinterpret_cast<uintptr_t>(w.p[k]) % 16) % 16;
        if (w.bytes[k] <= skip) continue;
        const uint32_t units = uint32_t((w.bytes[k] - skip) / 16);
        const uint32_t per = (units + gridDim.x - 1) / gridDim.x;
        const uint32_t first = per * blockIdx.x;
        if (first >= units) continue;
        const uint32_t n = min(per, units - first);
        const uint8_t* a = w.p[k] + skip + size_t(first) * 16;
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(a), "r"(n * 16) : "memory");
    }
#endif
}
#endif

}  // namespace apr_cuda
