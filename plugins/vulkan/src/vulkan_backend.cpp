// The Vulkan backend's ABI surface: descriptor, probe, sessions, step, last_error. Every entry
// point catches everything and turns it into a status plus last_error text.
#include <apr/backend.h>

#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "vulkan_device.hpp"
#include "vulkan_error.hpp"
#include "vulkan_session.hpp"

struct apr_session {
    explicit apr_session(const apr_model_view& view, uint32_t n_ctx) : impl(view, n_ctx) {}
    apr_vulkan::Session impl;
};

namespace {

thread_local std::string g_last_error;

apr_status fail(apr_status status, std::string message) {
    g_last_error = std::move(message);
    return status;
}

// Runs `body`, mapping every exception to a status with a message that names `stage`.
template <typename Body>
apr_status guarded(const char* stage, Body&& body) {
    try {
        g_last_error.clear();
        body();
        return APR_OK;
    } catch (const apr_vulkan::BackendError& e) {
        return fail(e.status(), std::string("vulkan ") + stage + ": " + e.what());
    } catch (const std::bad_alloc&) {
        return fail(APR_ERR_OUT_OF_MEMORY, std::string("vulkan ") + stage + ": out of host memory");
    } catch (const std::exception& e) {
        return fail(APR_ERR_INTERNAL, std::string("vulkan ") + stage + ": " + e.what());
    } catch (...) {
        return fail(APR_ERR_INTERNAL, std::string("vulkan ") + stage + ": unknown C++ exception");
    }
}

apr_status vulkan_probe(apr_device_info* info) {
    if (!info) return fail(APR_ERR_INVALID_ARGUMENT, "vulkan probe: info is NULL");
    return guarded("probe", [&] {
        apr_vulkan::Instance instance;
        std::string error;
        if (!instance.create(error)) throw apr_vulkan::BackendError(APR_ERR_NO_DEVICE, error);
        apr_vulkan::DeviceChoice device;
        if (!instance.choose_device(device, error)) throw apr_vulkan::BackendError(APR_ERR_NO_DEVICE, error);
        // Write only the fields the core's struct_size covers.
        const size_t have = info->struct_size;
        if (have >= offsetof(apr_device_info, description) + sizeof info->description)
            std::snprintf(info->description, sizeof info->description, "%s", device.description.c_str());
        if (have >= offsetof(apr_device_info, driver) + sizeof info->driver)
            std::snprintf(info->driver, sizeof info->driver, "%s", device.driver.c_str());
        if (have >= offsetof(apr_device_info, memory_bytes) + sizeof info->memory_bytes)
            info->memory_bytes = device.device_local_bytes;
    });
}

apr_status vulkan_open(const apr_model_view* model, const apr_session_config* config, apr_session** out) {
    if (!out) return fail(APR_ERR_INVALID_ARGUMENT, "vulkan open: out is NULL");
    *out = nullptr;
    if (!model || !config) return fail(APR_ERR_INVALID_ARGUMENT, "vulkan open: model or config is NULL");
    if (config->struct_size < offsetof(apr_session_config, n_ctx) + sizeof config->n_ctx)
        return fail(APR_ERR_INVALID_ARGUMENT, "vulkan open: apr_session_config too small to hold n_ctx");
    if (model->struct_size < offsetof(apr_model_view, tensors) + sizeof model->tensors)
        return fail(APR_ERR_INVALID_ARGUMENT, "vulkan open: apr_model_view too small (struct_size " +
                                                  std::to_string(model->struct_size) + ")");
    return guarded("open", [&] { *out = new apr_session(*model, config->n_ctx); });
}

void vulkan_close(apr_session* session) {
    try {
        delete session;
    } catch (...) {
        // close never fails; a destructor that threw leaves nothing the caller can act on
    }
}

const char* vulkan_last_error() { return g_last_error.c_str(); }

apr_status vulkan_measure_copy_rate(apr_session* session, double* bytes_per_second) {
    if (!session || !bytes_per_second) return fail(APR_ERR_INVALID_ARGUMENT, "vulkan measure_copy_rate: NULL argument");
    return guarded("measure_copy_rate", [&] { *bytes_per_second = session->impl.measure_copy_rate(); });
}

}  // namespace

extern "C" {

const apr_backend_desc apr_backend_descriptor = {
    APR_BACKEND_ABI_VERSION,
    sizeof(apr_backend_desc),
    "vulkan",
    "apr Vulkan backend",
    "0.2.0",
    200,
    APR_BACKEND_FLAG_GPU,
    vulkan_probe,
    vulkan_open,
    vulkan_close,
    vulkan_last_error,
    vulkan_measure_copy_rate,
};

apr_status apr_backend_step(apr_session* session, const int32_t* tokens, uint32_t n_tokens, uint32_t pos,
                            uint32_t flags, float* logits) {
    if (!session) return fail(APR_ERR_INVALID_ARGUMENT, "vulkan step: session is NULL");
    return guarded("step", [&] { session->impl.step(tokens, n_tokens, pos, (flags & APR_STEP_LOGITS_ALL) != 0, logits); });
}

}  // extern "C"
