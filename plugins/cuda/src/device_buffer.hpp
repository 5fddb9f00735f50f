// Owning handles for device memory and page-locked host memory (freed on destruction).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <utility>

#include "backend_error.hpp"

namespace apr_cuda {

class DeviceBuffer {
public:
    DeviceBuffer() = default;
    DeviceBuffer(size_t bytes, const char* what) : bytes_(bytes) {
        if (bytes == 0) return;
        const cudaError_t err = cudaMalloc(&ptr_, bytes);
        if (err != cudaSuccess) {
            cudaGetLastError();  // clear the (non-sticky) allocation error
            ptr_ = nullptr;
            throw BackendError(err == cudaErrorMemoryAllocation ? APR_ERR_OUT_OF_MEMORY : APR_ERR_DEVICE_LOST,
                               std::string("cudaMalloc of ") + std::to_string(bytes) + " bytes for " + what +
                                   " failed: " + cuda_error_text(err));
        }
    }
    ~DeviceBuffer() {
        if (ptr_) cudaFree(ptr_);
    }
    DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(o.bytes_) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        std::swap(ptr_, o.ptr_);
        std::swap(bytes_, o.bytes_);
        return *this;
    }
    template <typename T = void>
    T* get() const {
        return static_cast<T*>(ptr_);
    }
    size_t bytes() const { return bytes_; }

private:
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

class PinnedBuffer {
public:
    PinnedBuffer() = default;
    PinnedBuffer(size_t bytes, const char* what) {
        if (bytes == 0) return;
        const cudaError_t err = cudaMallocHost(&ptr_, bytes);
        if (err != cudaSuccess) {
            cudaGetLastError();
            ptr_ = nullptr;
            throw BackendError(APR_ERR_OUT_OF_MEMORY, std::string("cudaMallocHost of ") + std::to_string(bytes) +
                                                          " bytes for " + what + " failed: " + cuda_error_text(err));
        }
    }
    ~PinnedBuffer() {
        if (ptr_) cudaFreeHost(ptr_);
    }
    PinnedBuffer(PinnedBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)) {}
    PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
        std::swap(ptr_, o.ptr_);
        return *this;
    }
    template <typename T = void>
    T* get() const {
        return static_cast<T*>(ptr_);
    }

private:
    void* ptr_ = nullptr;
};

}  // namespace apr_cuda
