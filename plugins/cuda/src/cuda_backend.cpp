// The CUDA backend's ABI surface: descriptor, probe, sessions, last_error.
// Probing goes through the CUDA runtime (statically linked): with no driver installed,
// cudaGetDeviceCount fails with cudaErrorInsufficientDriver and the probe reports its text.
#include <apr/backend.h>
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace {

thread_local std::string g_last_error;

apr_status fail(apr_status status, std::string message) {
    g_last_error = std::move(message);
    return status;
}

std::string cuda_error_text(cudaError_t err) {
    return std::string(cudaGetErrorName(err)) + " (" + std::to_string(static_cast<int>(err)) +
           "): " + cudaGetErrorString(err);
}

apr_status cuda_probe(apr_device_info* info) {
    try {
        int count = 0;
        cudaError_t err = cudaGetDeviceCount(&count);
        if (err != cudaSuccess) return fail(APR_ERR_NO_DEVICE, "cudaGetDeviceCount failed: " + cuda_error_text(err));
        if (count == 0) return fail(APR_ERR_NO_DEVICE, "the CUDA driver reports no devices");
        cudaDeviceProp prop{};
        err = cudaGetDeviceProperties(&prop, 0);
        if (err != cudaSuccess) return fail(APR_ERR_NO_DEVICE, "cudaGetDeviceProperties failed: " + cuda_error_text(err));
        int driver = 0, runtime = 0;
        cudaDriverGetVersion(&driver);
        cudaRuntimeGetVersion(&runtime);
        std::snprintf(info->description, sizeof info->description, "%.200s, compute %d.%d, CUDA %d.%d", prop.name,
                      prop.major, prop.minor, driver / 1000, (driver % 1000) / 10);
        std::snprintf(info->driver, sizeof info->driver, "CUDA driver %d, runtime %d", driver, runtime);
        info->memory_bytes = prop.totalGlobalMem;
        return APR_OK;
    } catch (...) {
        return fail(APR_ERR_INTERNAL, "unexpected C++ exception in probe");
    }
}

apr_status cuda_open(const apr_model_view*, const apr_session_config*, apr_session** out) {
    *out = nullptr;
    return fail(APR_ERR_UNSUPPORTED,
                "the CUDA compute kernels are not written yet (this build only probes the device)");
}

void cuda_close(apr_session*) {}

const char* cuda_last_error() { return g_last_error.c_str(); }

}  // namespace

extern "C" {

const apr_backend_desc apr_backend_descriptor = {
    APR_BACKEND_ABI_VERSION,
    sizeof(apr_backend_desc),
    "cuda",
    "apr CUDA backend",
    "0.1.0",
    300,
    APR_BACKEND_FLAG_GPU,
    cuda_probe,
    cuda_open,
    cuda_close,
    cuda_last_error,
};

apr_status apr_backend_step(apr_session*, const int32_t*, uint32_t, uint32_t, uint32_t, float*) {
    return fail(APR_ERR_INVALID_ARGUMENT, "no CUDA session can be open in this build");
}

}  // extern "C"
