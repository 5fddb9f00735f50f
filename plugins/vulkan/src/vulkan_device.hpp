// Finding a Vulkan device for compute: instance creation, physical-device choice (discrete,
// then integrated, then virtual, then CPU implementations such as lavapipe; APR_VULKAN_DEVICE
// picks an index), and a description of it for the Backend line.
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>
#include <string>

#include "vulkan_error.hpp"

namespace apr_vulkan {

struct DeviceChoice {
    VkPhysicalDevice physical = VK_NULL_HANDLE;
    uint32_t index = 0;                 // among vkEnumeratePhysicalDevices
    uint32_t compute_queue_family = 0;
    std::string description;            // "llvmpipe (LLVM 15.0.7, 256 bits), Vulkan 1.3"
    std::string driver;                 // "llvmpipe Mesa 22.3.6"
    uint64_t device_local_bytes = 0;
};

// Owns a VkInstance for as long as it lives.
class Instance {
public:
    Instance() = default;
    ~Instance();
    Instance(const Instance&) = delete;
    Instance& operator=(const Instance&) = delete;

    // Creates the instance; false with `error` set when the loader or a driver is missing.
    bool create(std::string& error);
    // Chooses a device; false with `error` set when none is usable.
    bool choose_device(DeviceChoice& out, std::string& error) const;
    VkInstance handle() const { return instance_; }

private:
    VkInstance instance_ = VK_NULL_HANDLE;
};

}  // namespace apr_vulkan
