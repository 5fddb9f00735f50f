// Errors inside the plugin are exceptions carrying the ABI status to report; the entry points
// in vulkan_backend.cpp turn them into a status plus last_error text.
#pragma once

#include <apr/backend.h>
#include <vulkan/vulkan.h>

#include <stdexcept>
#include <string>

namespace apr_vulkan {

std::string vk_result_name(VkResult r);

class BackendError : public std::runtime_error {
public:
    BackendError(apr_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
    apr_status status() const { return status_; }

private:
    apr_status status_;
};

// Throws a BackendError naming `what` and the VkResult unless r is VK_SUCCESS. Out-of-memory
// results map to APR_ERR_OUT_OF_MEMORY, a lost device to APR_ERR_DEVICE_LOST.
inline void vk_check(VkResult r, const char* what) {
    if (r == VK_SUCCESS) return;
    apr_status status = APR_ERR_INTERNAL;
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) status = APR_ERR_OUT_OF_MEMORY;
    if (r == VK_ERROR_DEVICE_LOST) status = APR_ERR_DEVICE_LOST;
    throw BackendError(status, std::string(what) + " failed: " + vk_result_name(r));
}

}  // namespace apr_vulkan
