#include "copy_rate.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>

#include "backend_error.hpp"
#include "device_buffer.hpp"

namespace apr_cuda {
namespace {

// 1 GiB per buffer where memory allows: 20x an H200's L2, so every byte comes from HBM. The
// smallest accepted, 64 MiB, is still beyond any current L2.
constexpr size_t kLargest = size_t(1) << 30, kSmallest = size_t(64) << 20;
constexpr int kPasses = 5;

// Owns an event pair and a stream, destroyed on every path out.
struct Timing {
    cudaStream_t stream = nullptr;
    cudaEvent_t start = nullptr, stop = nullptr;
    Timing() {
        cuda_check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate (copy rate)");
        cuda_check(cudaEventCreate(&start), "cudaEventCreate (copy rate)");
        cuda_check(cudaEventCreate(&stop), "cudaEventCreate (copy rate)");
    }
    ~Timing() {
        if (stop) cudaEventDestroy(stop);
        if (start) cudaEventDestroy(start);
        if (stream) cudaStreamDestroy(stream);
    }
};

}  // namespace

double measure_device_copy_rate() {
    size_t free_bytes = 0, total_bytes = 0;
    cuda_check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo (copy rate)");
    // Two buffers in at most half of what is free: the session's own memory stays untouched.
    size_t bytes = kLargest;
    while (bytes > kSmallest && 4 * bytes > free_bytes) bytes /= 2;
    if (4 * bytes > free_bytes)
        throw BackendError(APR_ERR_OUT_OF_MEMORY, "copy rate: " + std::to_string(free_bytes >> 20) +
                                                      " MiB free, too little for two 64 MiB buffers");
    DeviceBuffer src(bytes, "copy-rate source"), dst(bytes, "copy-rate destination");
    cuda_check(cudaMemset(src.get(), 1, bytes), "cudaMemset (copy rate)");
    Timing t;
    float best_ms = 0.0f;
    for (int pass = 0; pass <= kPasses; ++pass) {  // pass 0 warms up and is not counted
        cuda_check(cudaEventRecord(t.start, t.stream), "cudaEventRecord (copy rate)");
        cuda_check(cudaMemcpyAsync(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice, t.stream),
                   "cudaMemcpyAsync (copy rate)");
        cuda_check(cudaEventRecord(t.stop, t.stream), "cudaEventRecord (copy rate)");
        cuda_check(cudaEventSynchronize(t.stop), "cudaEventSynchronize (copy rate)");
        float ms = 0.0f;
        cuda_check(cudaEventElapsedTime(&ms, t.start, t.stop), "cudaEventElapsedTime (copy rate)");
        if (pass > 0 && (best_ms == 0.0f || ms < best_ms)) best_ms = ms;
    }
    if (best_ms <= 0.0f) throw BackendError(APR_ERR_INTERNAL, "copy rate: the copies took no measurable time");
    return 2.0 * static_cast<double>(bytes) / (static_cast<double>(best_ms) * 1e-3);
}

}  // namespace apr_cuda
