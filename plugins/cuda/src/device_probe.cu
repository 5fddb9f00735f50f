// Whether this build's kernels can run on the current device: the runtime finds machine code
// (sm_90) or PTX it can compile for the device, or reports cudaErrorNoKernelImageForDevice /
// cudaErrorInvalidDeviceFunction.
#include "kernels.hpp"

namespace apr_cuda {
namespace {
__global__ void image_probe_kernel(int* out) {
    if (out) *out = 1;
}
}  // namespace

cudaError_t kernel_image_status() {
    cudaFuncAttributes attributes{};
    const cudaError_t err = cudaFuncGetAttributes(&attributes, image_probe_kernel);
    if (err != cudaSuccess) return err;
    image_probe_kernel<<<1, 1>>>(nullptr);
    cudaError_t launch = cudaGetLastError();
    if (launch == cudaSuccess) launch = cudaDeviceSynchronize();
    return launch;
}

}  // namespace apr_cuda
