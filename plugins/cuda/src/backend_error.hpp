// Errors inside the CUDA plugin: every failure is a BackendError carrying the ABI status it
// becomes at the boundary (cuda_backend.cpp catches them), so no exception ever crosses it.
#pragma once

#include <apr/backend.h>
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace apr_cuda {

class BackendError : public std::runtime_error {
public:
    BackendError(apr_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
    apr_status status() const { return status_; }

private:
    apr_status status_;
};

// "cudaErrorMemoryAllocation (2): out of memory"
inline std::string cuda_error_text(cudaError_t err) {
    return std::string(cudaGetErrorName(err)) + " (" + std::to_string(static_cast<int>(err)) +
           "): " + cudaGetErrorString(err);
}

// Throws a BackendError naming `what` when `err` is not cudaSuccess. Allocation failures map to
// APR_ERR_OUT_OF_MEMORY; anything else means the device (or our use of it) failed.
inline void cuda_check(cudaError_t err, const char* what) {
    if (err == cudaSuccess) return;
    const apr_status status = err == cudaErrorMemoryAllocation ? APR_ERR_OUT_OF_MEMORY : APR_ERR_DEVICE_LOST;
    throw BackendError(status, std::string(what) + " failed: " + cuda_error_text(err));
}

}  // namespace apr_cuda
