// Kernel launches, optionally with programmatic dependent launch (PDL): every kernel starts
// with wait_for_previous_kernel(), which waits until the kernel before it in the stream has
// finished and its writes are visible, and then lets the next kernel be scheduled. Launched
// with the PDL attribute, a kernel's launch and block setup thus overlap the tail of the one
// before it, which matters for a decode step of hundreds of short kernels. The order of memory
// effects is that of plain stream launches (each kernel waits for the whole previous grid, and
// by induction for everything before it), so no kernel may write before its wait. On by default
// since the fused decode and the L2 warm-up (H200, 7B Q4_0, two interleaved pairs in one run: pp512
// 15,135 / 15,146 against 14,936 / 14,880 tokens/s, tg128 541.5 / 541.6 against 538.7 / 535.9);
// earlier kernels had measured slower with it (288 against 300, then 376 against 394 tokens/s).
// APR_CUDA_PDL=0 launches without the attribute (the wait is then a no-op).
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>

#include "backend_error.hpp"

namespace apr_cuda {

inline bool pdl_enabled() {
    static const bool enabled = [] {
        const char* v = std::getenv("APR_CUDA_PDL");
        return !(v && std::strcmp(v, "0") == 0);
    }();
    return enabled;
}

// The two halves of wait_for_previous_kernel, for kernels that let the next one in only near
// their end: scheduled early, the next kernel's blocks would hold SM resources (spinning in their
// own wait) that this kernel's later blocks need.
__device__ __forceinline__ void wait_for_inputs() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void allow_next_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void wait_for_previous_kernel() {
    wait_for_inputs();
    allow_next_kernel();
}

// kernel<<<grid, block, smem, stream>>>(args...), with the PDL attribute unless disabled;
// throws BackendError naming `what` when the launch fails.
template <class... KernelArgs, class... Args>
void launch_kernel(const char* what, void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem,
                   cudaStream_t stream, Args&&... args) {
    cudaLaunchAttribute attr{};
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = smem;
    config.stream = stream;
    config.attrs = &attr;
    config.numAttrs = pdl_enabled() ? 1 : 0;
    cuda_check(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...), what);
}

}  // namespace apr_cuda
