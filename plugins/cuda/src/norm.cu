// RMSNorm: one block per row; the sum of squares is reduced across the block in f32.
#include "backend_error.hpp"
#include "kernels.hpp"
#include "launch.cuh"

namespace apr_cuda {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads)
    rms_norm_kernel(const float* x, int ldx, float* y, int ldy, const float* __restrict__ weight, int n, float eps) {
    wait_for_previous_kernel();
    const float* xr = x + size_t(blockIdx.x) * ldx;
    float* yr = y + size_t(blockIdx.x) * ldy;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < n; i += kThreads) sum += xr[i] * xr[i];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    __shared__ float warp_sums[kThreads / 32];
    if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = sum;
    __syncthreads();
    float total = 0.0f;
#pragma unroll
    for (int w = 0; w < kThreads / 32; ++w) total += warp_sums[w];
    const float scale = rsqrtf(total / float(n) + eps);
    // Each thread rewrites exactly the elements it read, so x may equal y.
    for (int i = threadIdx.x; i < n; i += kThreads) yr[i] = xr[i] * scale * weight[i];
}

}  // namespace

void rms_norm(const float* x, int ldx, float* y, int ldy, const float* weight, int n, int n_rows, float eps,
              cudaStream_t stream) {
    if (n_rows <= 0) return;
    launch_kernel("rms_norm kernel", rms_norm_kernel, n_rows, kThreads, 0, stream, x, ldx, y, ldy, weight, n, eps);
    check_launch("rms_norm kernel");
}

void check_launch(const char* what) { cuda_check(cudaGetLastError(), what); }

}  // namespace apr_cuda
