// The CUDA backend's ABI surface: descriptor, probe, open/close, step, last_error. Every entry
// point catches everything; failures become a status plus a message in last_error.
// Probing goes through the CUDA runtime (statically linked): with no driver installed,
// cudaGetDeviceCount fails with cudaErrorInsufficientDriver and the probe reports its text.
#include <apr/backend.h>
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "backend_error.hpp"
#include "copy_rate.hpp"
#include "kernels.hpp"
#include "session.hpp"

namespace {

using apr_cuda::BackendError;
using apr_cuda::cuda_error_text;

thread_local std::string g_last_error;

apr_status fail(apr_status status, std::string message) {
    g_last_error = std::move(message);
    return status;
}

// Runs fn, turning every exception into a status and a last_error text.
template <class Fn>
apr_status guarded(const char* entry, Fn&& fn) {
    try {
        fn();
        g_last_error.clear();
        return APR_OK;
    } catch (const BackendError& e) {
        return fail(e.status(), e.what());
    } catch (const std::bad_alloc&) {
        return fail(APR_ERR_OUT_OF_MEMORY, std::string("cuda backend: host memory exhausted in ") + entry);
    } catch (const std::exception& e) {
        return fail(APR_ERR_INTERNAL, std::string("cuda backend: ") + entry + ": " + e.what());
    } catch (...) {
        return fail(APR_ERR_INTERNAL, std::string("cuda backend: unknown exception in ") + entry);
    }
}

apr_status cuda_probe(apr_device_info* info) {
    return guarded("probe", [&] {
        if (!info) throw BackendError(APR_ERR_INVALID_ARGUMENT, "probe: info is null");
        int count = 0;
        cudaError_t err = cudaGetDeviceCount(&count);
        if (err != cudaSuccess)
            throw BackendError(APR_ERR_NO_DEVICE, "cudaGetDeviceCount failed: " + cuda_error_text(err));
        if (count == 0) throw BackendError(APR_ERR_NO_DEVICE, "the CUDA driver reports no devices");
        err = cudaSetDevice(0);
        if (err != cudaSuccess) throw BackendError(APR_ERR_NO_DEVICE, "cudaSetDevice(0) failed: " + cuda_error_text(err));
        cudaDeviceProp prop{};
        err = cudaGetDeviceProperties(&prop, 0);
        if (err != cudaSuccess)
            throw BackendError(APR_ERR_NO_DEVICE, "cudaGetDeviceProperties failed: " + cuda_error_text(err));
        err = apr_cuda::kernel_image_status();
        if (err != cudaSuccess)
            throw BackendError(APR_ERR_NO_DEVICE, std::string(prop.name) + " (compute capability " +
                                                      std::to_string(prop.major) + "." + std::to_string(prop.minor) +
                                                      ") cannot run this build's kernels (built for sm_90): " +
                                                      cuda_error_text(err));
        int driver = 0, runtime = 0;
        cudaDriverGetVersion(&driver);
        cudaRuntimeGetVersion(&runtime);
        const size_t covers_description = offsetof(apr_device_info, description) + sizeof info->description;
        const size_t covers_driver = offsetof(apr_device_info, driver) + sizeof info->driver;
        const size_t covers_memory = offsetof(apr_device_info, memory_bytes) + sizeof info->memory_bytes;
        if (info->struct_size >= covers_description)
            std::snprintf(info->description, sizeof info->description, "%.200s, compute %d.%d, CUDA %d.%d",
                          prop.name, prop.major, prop.minor, driver / 1000, (driver % 1000) / 10);
        if (info->struct_size >= covers_driver)
            std::snprintf(info->driver, sizeof info->driver, "CUDA driver %d, runtime %d", driver, runtime);
        if (info->struct_size >= covers_memory) info->memory_bytes = prop.totalGlobalMem;
    });
}

apr_status cuda_open(const apr_model_view* model, const apr_session_config* config, apr_session** out) {
    if (out) *out = nullptr;
    return guarded("open", [&] {
        if (!model || !config || !out)
            throw BackendError(APR_ERR_INVALID_ARGUMENT, "open: model, config and out must not be null");
        if (config->struct_size < offsetof(apr_session_config, n_ctx) + sizeof config->n_ctx)
            throw BackendError(APR_ERR_INVALID_ARGUMENT, "open: session config too small to hold n_ctx");
        if (config->n_ctx == 0) throw BackendError(APR_ERR_INVALID_ARGUMENT, "open: n_ctx is 0");
        auto* session = new apr_cuda::Session(*model, config->n_ctx);
        *out = reinterpret_cast<apr_session*>(session);
    });
}

void cuda_close(apr_session* session) {
    try {
        delete reinterpret_cast<apr_cuda::Session*>(session);
    } catch (...) {
        // close never fails; a device error while freeing leaves nothing for the caller to do.
    }
}

const char* cuda_last_error() { return g_last_error.c_str(); }

apr_status cuda_measure_copy_rate(apr_session* session, double* bytes_per_second) {
    return guarded("measure_copy_rate", [&] {
        if (!session || !bytes_per_second)
            throw BackendError(APR_ERR_INVALID_ARGUMENT, "measure_copy_rate: session and out must not be null");
        *bytes_per_second = apr_cuda::measure_device_copy_rate();
    });
}

}  // namespace

extern "C" {

const apr_backend_desc apr_backend_descriptor = {
    APR_BACKEND_ABI_VERSION,
    sizeof(apr_backend_desc),
    "cuda",
    "apr CUDA backend",
    "0.2.0",
    300,
    APR_BACKEND_FLAG_GPU,
    cuda_probe,
    cuda_open,
    cuda_close,
    cuda_last_error,
    cuda_measure_copy_rate,
};

apr_status apr_backend_step(apr_session* session, const int32_t* tokens, uint32_t n_tokens, uint32_t pos,
                            uint32_t flags, float* logits) {
    return guarded("step", [&] {
        if (!session) throw BackendError(APR_ERR_INVALID_ARGUMENT, "step: session is null");
        reinterpret_cast<apr_cuda::Session*>(session)->step(tokens, n_tokens, pos, (flags & APR_STEP_LOGITS_ALL) != 0,
                                                            logits);
    });
}

}  // extern "C"
