// The Vulkan backend's ABI surface: descriptor, probe, sessions, last_error.
#include <apr/backend.h>

#include <cstdio>
#include <string>

#include "vulkan_device.hpp"

namespace {

thread_local std::string g_last_error;

apr_status fail(apr_status status, std::string message) {
    g_last_error = std::move(message);
    return status;
}

apr_status vulkan_probe(apr_device_info* info) {
    try {
        apr_vulkan::Instance instance;
        std::string error;
        if (!instance.create(error)) return fail(APR_ERR_NO_DEVICE, error);
        apr_vulkan::DeviceChoice device;
        if (!instance.choose_device(device, error)) return fail(APR_ERR_NO_DEVICE, error);
        std::snprintf(info->description, sizeof info->description, "%s", device.description.c_str());
        std::snprintf(info->driver, sizeof info->driver, "%s", device.driver.c_str());
        info->memory_bytes = device.device_local_bytes;
        return APR_OK;
    } catch (...) {
        return fail(APR_ERR_INTERNAL, "unexpected C++ exception in probe");
    }
}

apr_status vulkan_open(const apr_model_view*, const apr_session_config*, apr_session** out) {
    *out = nullptr;
    return fail(APR_ERR_UNSUPPORTED, "the Vulkan compute shaders are not written yet (this build only probes the device)");
}

void vulkan_close(apr_session*) {}

const char* vulkan_last_error() { return g_last_error.c_str(); }

}  // namespace

extern "C" {

const apr_backend_desc apr_backend_descriptor = {
    APR_BACKEND_ABI_VERSION,
    sizeof(apr_backend_desc),
    "vulkan",
    "apr Vulkan backend",
    "0.1.0",
    200,
    APR_BACKEND_FLAG_GPU,
    vulkan_probe,
    vulkan_open,
    vulkan_close,
    vulkan_last_error,
};

apr_status apr_backend_step(apr_session*, const int32_t*, uint32_t, uint32_t, uint32_t, float*) {
    return fail(APR_ERR_INVALID_ARGUMENT, "no Vulkan session can be open in this build");
}

}  // extern "C"
