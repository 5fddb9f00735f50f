#include "vulkan_device.hpp"

#include <cstdlib>
#include <string>
#include <vector>

namespace apr_vulkan {

std::string vk_result_name(VkResult r) {
    switch (r) {
        case VK_SUCCESS: return "VK_SUCCESS";
        case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
        case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
        case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
        case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
        case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
        case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
        case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
        case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER (no Vulkan driver found)";
        case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
        case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
        case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
        case VK_ERROR_INVALID_SHADER_NV: return "VK_ERROR_INVALID_SHADER_NV";
        case VK_TIMEOUT: return "VK_TIMEOUT";
        case VK_NOT_READY: return "VK_NOT_READY";
        case VK_INCOMPLETE: return "VK_INCOMPLETE";
        case VK_ERROR_UNKNOWN: return "VK_ERROR_UNKNOWN";
        case VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS: return "VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS";
        default: return "VkResult " + std::to_string(static_cast<int>(r));
    }
}

Instance::~Instance() {
    if (instance_ != VK_NULL_HANDLE) vkDestroyInstance(instance_, nullptr);
}

bool Instance::create(std::string& error) {
    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "apr";
    app.pEngineName = "apr";
    app.apiVersion = VK_API_VERSION_1_2;
    VkInstanceCreateInfo info{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    info.pApplicationInfo = &app;
    VkResult r = vkCreateInstance(&info, nullptr, &instance_);
    if (r != VK_SUCCESS) {
        instance_ = VK_NULL_HANDLE;
        error = "vkCreateInstance failed: " + vk_result_name(r);
        return false;
    }
    return true;
}

namespace {

int type_rank(VkPhysicalDeviceType t) {
    switch (t) {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
        case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
        default: return 4;
    }
}

bool compute_family(VkPhysicalDevice dev, uint32_t& family) {
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(dev, &n, nullptr);
    std::vector<VkQueueFamilyProperties> props(n);
    vkGetPhysicalDeviceQueueFamilyProperties(dev, &n, props.data());
    // Prefer a compute queue without graphics (dedicated compute), else any compute queue.
    for (int pass = 0; pass < 2; ++pass)
        for (uint32_t i = 0; i < n; ++i) {
            bool compute = props[i].queueFlags & VK_QUEUE_COMPUTE_BIT;
            bool graphics = props[i].queueFlags & VK_QUEUE_GRAPHICS_BIT;
            if (compute && (pass == 1 || !graphics)) {
                family = i;
                return true;
            }
        }
    return false;
}

void describe(VkPhysicalDevice dev, DeviceChoice& c) {
    VkPhysicalDeviceDriverProperties driver{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    props.pNext = &driver;
    vkGetPhysicalDeviceProperties2(dev, &props);
    uint32_t api = props.properties.apiVersion;
    c.description = std::string(props.properties.deviceName) + ", Vulkan " + std::to_string(VK_API_VERSION_MAJOR(api)) +
                    "." + std::to_string(VK_API_VERSION_MINOR(api));
    c.driver = std::string(driver.driverName) + " " + driver.driverInfo;
    VkPhysicalDeviceMemoryProperties mem{};
    vkGetPhysicalDeviceMemoryProperties(dev, &mem);
    c.device_local_bytes = 0;
    for (uint32_t i = 0; i < mem.memoryHeapCount; ++i)
        if (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) c.device_local_bytes += mem.memoryHeaps[i].size;
}

}  // namespace

bool Instance::choose_device(DeviceChoice& out, std::string& error) const {
    uint32_t n = 0;
    VkResult r = vkEnumeratePhysicalDevices(instance_, &n, nullptr);
    if (r != VK_SUCCESS) {
        error = "vkEnumeratePhysicalDevices failed: " + vk_result_name(r);
        return false;
    }
    if (n == 0) {
        error = "the Vulkan loader found no physical device";
        return false;
    }
    std::vector<VkPhysicalDevice> devices(n);
    vkEnumeratePhysicalDevices(instance_, &n, devices.data());

    if (const char* forced = std::getenv("APR_VULKAN_DEVICE"); forced && *forced) {
        char* end = nullptr;
        unsigned long idx = std::strtoul(forced, &end, 10);
        if (*end != '\0' || idx >= n) {
            error = "APR_VULKAN_DEVICE=" + std::string(forced) + " is not a device index (0.." + std::to_string(n - 1) + ")";
            return false;
        }
        out.index = static_cast<uint32_t>(idx);
        out.physical = devices[idx];
        describe(out.physical, out);
        if (!compute_family(out.physical, out.compute_queue_family)) {
            error = "device " + std::to_string(idx) + " (" + out.description + ") has no compute queue";
            return false;
        }
        return true;
    }

    int best_rank = 5;
    for (uint32_t i = 0; i < n; ++i) {
        VkPhysicalDeviceProperties p{};
        vkGetPhysicalDeviceProperties(devices[i], &p);
        uint32_t family = 0;
        int rank = type_rank(p.deviceType);
        if (rank < best_rank && compute_family(devices[i], family)) {
            best_rank = rank;
            out.physical = devices[i];
            out.index = i;
            out.compute_queue_family = family;
        }
    }
    if (out.physical == VK_NULL_HANDLE) {
        error = std::to_string(n) + " Vulkan device(s) found, none with a compute queue";
        return false;
    }
    describe(out.physical, out);
    return true;
}

}  // namespace apr_vulkan
