// The logical device the backend computes on: one compute queue, device-address buffers (the
// shaders reach every buffer through addresses in push constants, so there are no descriptor
// sets), compute pipelines made on demand from the embedded SPIR-V, and two command buffers: one
// is recorded and submitted per step, and a decode step may record the next step's into the other
// while the GPU runs (Session's record-ahead).
#pragma once

#include <vulkan/vulkan.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vulkan_device.hpp"
#include "vulkan_profiler.hpp"

namespace apr_vulkan {

class Context;

// A buffer with its own memory and device address. Host-visible buffers stay mapped.
class Buffer {
public:
    Buffer() = default;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    Buffer(Buffer&& o) noexcept { *this = std::move(o); }
    Buffer& operator=(Buffer&& o) noexcept;
    ~Buffer() { reset(); }
    void reset();

    VkBuffer handle() const { return buffer_; }
    VkDeviceAddress address() const { return address_; }
    VkDeviceSize size() const { return size_; }
    void* mapped() const { return mapped_; }

private:
    friend class Context;
    VkDevice device_ = VK_NULL_HANDLE;
    VkBuffer buffer_ = VK_NULL_HANDLE;
    VkDeviceMemory memory_ = VK_NULL_HANDLE;
    VkDeviceAddress address_ = 0;
    VkDeviceSize size_ = 0;
    void* mapped_ = nullptr;
};

enum class MemoryKind { device_local, host_visible };

class Context {
public:
    // Chooses the device (vulkan_device.cpp) and creates the logical device. Throws BackendError.
    Context();
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    const DeviceChoice& device() const { return choice_; }
    // Whether the shaders' subgroup-arithmetic variants may be used (APR_VULKAN_NO_SUBGROUPS=1 forbids).
    bool use_subgroups() const { return use_subgroups_; }
    // Whether shaders may take packed int8 dot products (VK_KHR_shader_integer_dot_product;
    // APR_VULKAN_NO_INT8_DOT=1 forbids): decode products with Q8_0-rounded activations then
    // multiply int8 blocks, as llama.cpp's CPU backend does.
    bool int8_dot() const { return int8_dot_; }

    // A buffer of at least `size` bytes plus 16 spare bytes (the shaders may read one word past
    // the end of a tensor). Throws BackendError (APR_ERR_OUT_OF_MEMORY when the device is full).
    Buffer create_buffer(VkDeviceSize size, MemoryKind kind);
    // Copies host bytes into a device buffer through a staging buffer.
    void upload(const Buffer& dst, VkDeviceSize dst_offset, const void* src, std::size_t n);

    // The compute pipeline of an embedded shader variant, created on first use.
    VkPipeline pipeline(const std::string& variant);
    // Specialization constants (ids 0, 1, ...) for the variants `applies` accepts (the first
    // such call's), for the pipelines created after this call (the shaders' defaults otherwise).
    void specialize(std::function<bool(const std::string&)> applies, std::vector<uint32_t> values);
    VkPipelineLayout pipeline_layout() const { return layout_; }

    // Command buffer `slot` (< kCommandBuffers): begin() resets and begins it; end() closes it
    // (with a barrier that makes its writes visible to the host); launch() submits it without
    // waiting; wait() waits for the last launch and collects the profile; submit() is all three.
    // One submission is in flight at a time: the next launch() comes after wait().
    static constexpr uint32_t kCommandBuffers = 2;
    VkCommandBuffer begin(uint32_t slot = 0);
    void end(uint32_t slot);
    void launch(uint32_t slot);
    void wait();
    void submit(uint32_t slot = 0);

    // Timestamps per dispatch when APR_VULKAN_PROFILE=1 (vulkan_profiler.hpp); submit() collects them.
    Profiler& profiler() { return *profiler_; }

    // Largest push-constant block every pipeline accepts.
    static constexpr uint32_t kPushConstantBytes = 128;

private:
    uint32_t memory_type(uint32_t allowed_bits, MemoryKind kind) const;

    Instance instance_;
    DeviceChoice choice_;
    VkDevice device_ = VK_NULL_HANDLE;
    VkQueue queue_ = VK_NULL_HANDLE;
    VkCommandPool pool_ = VK_NULL_HANDLE;
    VkCommandBuffer cmds_[kCommandBuffers] = {};
    VkFence fence_ = VK_NULL_HANDLE;
    VkPipelineLayout layout_ = VK_NULL_HANDLE;
    VkPhysicalDeviceMemoryProperties memory_{};
    std::map<std::string, VkPipeline> pipelines_;
    std::vector<std::pair<std::function<bool(const std::string&)>, std::vector<uint32_t>>> specializations_;
    Buffer staging_;
    std::unique_ptr<Profiler> profiler_;
    bool use_subgroups_ = false;
    bool int8_dot_ = false;
};

}  // namespace apr_vulkan
