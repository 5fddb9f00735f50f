#include "vulkan_context.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "vulkan_error.hpp"
#include "vulkan_shaders.hpp"

namespace apr_vulkan {

Buffer& Buffer::operator=(Buffer&& o) noexcept {
    if (this != &o) {
        reset();
        device_ = o.device_;
        buffer_ = o.buffer_;
        memory_ = o.memory_;
        address_ = o.address_;
        size_ = o.size_;
        mapped_ = o.mapped_;
        o.buffer_ = VK_NULL_HANDLE;
        o.memory_ = VK_NULL_HANDLE;
        o.mapped_ = nullptr;
        o.address_ = 0;
        o.size_ = 0;
    }
    return *this;
}

void Buffer::reset() {
    if (device_ == VK_NULL_HANDLE) return;
    if (buffer_ != VK_NULL_HANDLE) vkDestroyBuffer(device_, buffer_, nullptr);
    if (memory_ != VK_NULL_HANDLE) vkFreeMemory(device_, memory_, nullptr);  // also unmaps
    buffer_ = VK_NULL_HANDLE;
    memory_ = VK_NULL_HANDLE;
    mapped_ = nullptr;
    address_ = 0;
    size_ = 0;
}

namespace {

constexpr VkDeviceSize kStagingBytes = 64ull << 20;

bool subgroup_arithmetic_in_compute(VkPhysicalDevice physical) {
    VkPhysicalDeviceSubgroupProperties sub{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    props.pNext = &sub;
    vkGetPhysicalDeviceProperties2(physical, &props);
    VkSubgroupFeatureFlags need = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
    return (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) && (sub.supportedOperations & need) == need &&
           sub.subgroupSize >= 4;
}

bool has_device_extension(VkPhysicalDevice physical, const char* name) {
    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(physical, nullptr, &n, nullptr);
    std::vector<VkExtensionProperties> exts(n);
    vkEnumerateDeviceExtensionProperties(physical, nullptr, &n, exts.data());
    for (const auto& e : exts)
        if (std::strcmp(e.extensionName, name) == 0) return true;
    return false;
}

bool env_is_1(const char* name) {
    const char* v = std::getenv(name);
    return v && std::strcmp(v, "1") == 0;
}

}  // namespace

Context::Context() {
    std::string error;
    if (!instance_.create(error)) throw BackendError(APR_ERR_NO_DEVICE, error);
    if (!instance_.choose_device(choice_, error)) throw BackendError(APR_ERR_NO_DEVICE, error);

    VkPhysicalDeviceProperties props{};
    vkGetPhysicalDeviceProperties(choice_.physical, &props);
    if (props.apiVersion < VK_API_VERSION_1_2)
        throw BackendError(APR_ERR_NO_DEVICE, choice_.description + " supports only Vulkan " +
                                                  std::to_string(VK_API_VERSION_MAJOR(props.apiVersion)) + "." +
                                                  std::to_string(VK_API_VERSION_MINOR(props.apiVersion)) +
                                                  "; the backend needs 1.2");
    const bool dot_ext = has_device_extension(choice_.physical, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR have_dot{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR};
    VkPhysicalDeviceVulkan12Features have12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    if (dot_ext) have12.pNext = &have_dot;
    VkPhysicalDeviceFeatures2 have{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    have.pNext = &have12;
    vkGetPhysicalDeviceFeatures2(choice_.physical, &have);
    if (!have12.bufferDeviceAddress)
        throw BackendError(APR_ERR_NO_DEVICE, choice_.description + " lacks the bufferDeviceAddress feature");

    use_subgroups_ = subgroup_arithmetic_in_compute(choice_.physical) && !env_is_1("APR_VULKAN_NO_SUBGROUPS");
    int8_dot_ = dot_ext && have_dot.shaderIntegerDotProduct && !env_is_1("APR_VULKAN_NO_INT8_DOT");

    float priority = 1.0f;
    VkDeviceQueueCreateInfo queue_info{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    queue_info.queueFamilyIndex = choice_.compute_queue_family;
    queue_info.queueCount = 1;
    queue_info.pQueuePriorities = &priority;
    VkPhysicalDeviceVulkan12Features want12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    want12.bufferDeviceAddress = VK_TRUE;
    VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR want_dot{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR};
    want_dot.shaderIntegerDotProduct = VK_TRUE;
    const char* dot_ext_name = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
    VkDeviceCreateInfo device_info{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    device_info.pNext = &want12;
    if (int8_dot_) {
        want12.pNext = &want_dot;
        device_info.enabledExtensionCount = 1;
        device_info.ppEnabledExtensionNames = &dot_ext_name;
    }
    device_info.queueCreateInfoCount = 1;
    device_info.pQueueCreateInfos = &queue_info;
    vk_check(vkCreateDevice(choice_.physical, &device_info, nullptr, &device_), "vkCreateDevice");
    vkGetDeviceQueue(device_, choice_.compute_queue_family, 0, &queue_);
    vkGetPhysicalDeviceMemoryProperties(choice_.physical, &memory_);

    VkCommandPoolCreateInfo pool_info{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pool_info.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pool_info.queueFamilyIndex = choice_.compute_queue_family;
    vk_check(vkCreateCommandPool(device_, &pool_info, nullptr, &pool_), "vkCreateCommandPool");
    VkCommandBufferAllocateInfo alloc{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    alloc.commandPool = pool_;
    alloc.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    alloc.commandBufferCount = kCommandBuffers;
    vk_check(vkAllocateCommandBuffers(device_, &alloc, cmds_), "vkAllocateCommandBuffers");
    VkFenceCreateInfo fence_info{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    vk_check(vkCreateFence(device_, &fence_info, nullptr, &fence_), "vkCreateFence");

    VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, kPushConstantBytes};
    VkPipelineLayoutCreateInfo layout_info{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    layout_info.pushConstantRangeCount = 1;
    layout_info.pPushConstantRanges = &range;
    vk_check(vkCreatePipelineLayout(device_, &layout_info, nullptr, &layout_), "vkCreatePipelineLayout");
    profiler_ = std::make_unique<Profiler>(device_, choice_.physical, choice_.compute_queue_family);
}

Context::~Context() {
    if (device_ == VK_NULL_HANDLE) return;
    vkDeviceWaitIdle(device_);
    profiler_.reset();  // prints its totals; its query pool belongs to the device
    staging_.reset();
    for (auto& [name, p] : pipelines_) vkDestroyPipeline(device_, p, nullptr);
    if (layout_ != VK_NULL_HANDLE) vkDestroyPipelineLayout(device_, layout_, nullptr);
    if (fence_ != VK_NULL_HANDLE) vkDestroyFence(device_, fence_, nullptr);
    if (pool_ != VK_NULL_HANDLE) vkDestroyCommandPool(device_, pool_, nullptr);
    vkDestroyDevice(device_, nullptr);
}

uint32_t Context::memory_type(uint32_t allowed_bits, MemoryKind kind) const {
    auto find = [&](VkMemoryPropertyFlags need) -> int {
        for (uint32_t i = 0; i < memory_.memoryTypeCount; ++i)
            if ((allowed_bits & (1u << i)) && (memory_.memoryTypes[i].propertyFlags & need) == need)
                return static_cast<int>(i);
        return -1;
    };
    int found = -1;
    if (kind == MemoryKind::device_local) {
        found = find(VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
        if (found < 0) found = find(0);
    } else {
        found = find(VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                     VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
        if (found < 0) found = find(VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    }
    if (found < 0)
        throw BackendError(APR_ERR_INTERNAL, std::string("no Vulkan memory type for a ") +
                                                 (kind == MemoryKind::device_local ? "device-local" : "host-visible") +
                                                 " buffer on " + choice_.description);
    return static_cast<uint32_t>(found);
}

Buffer Context::create_buffer(VkDeviceSize size, MemoryKind kind) {
    Buffer b;
    b.device_ = device_;
    VkBufferCreateInfo info{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    info.size = size + 16;
    info.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT;
    info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    vk_check(vkCreateBuffer(device_, &info, nullptr, &b.buffer_), "vkCreateBuffer");
    VkMemoryRequirements req{};
    vkGetBufferMemoryRequirements(device_, b.buffer_, &req);
    VkMemoryAllocateFlagsInfo flags{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO};
    flags.flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT;
    VkMemoryAllocateInfo alloc{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    alloc.pNext = &flags;
    alloc.allocationSize = req.size;
    alloc.memoryTypeIndex = memory_type(req.memoryTypeBits, kind);
    vk_check(vkAllocateMemory(device_, &alloc, nullptr, &b.memory_),
             ("vkAllocateMemory (" + std::to_string(req.size) + " bytes)").c_str());
    vk_check(vkBindBufferMemory(device_, b.buffer_, b.memory_, 0), "vkBindBufferMemory");
    if (kind == MemoryKind::host_visible)
        vk_check(vkMapMemory(device_, b.memory_, 0, VK_WHOLE_SIZE, 0, &b.mapped_), "vkMapMemory");
    VkBufferDeviceAddressInfo addr{VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO};
    addr.buffer = b.buffer_;
    b.address_ = vkGetBufferDeviceAddress(device_, &addr);
    b.size_ = size;
    return b;
}

void Context::upload(const Buffer& dst, VkDeviceSize dst_offset, const void* src, std::size_t n) {
    if (staging_.handle() == VK_NULL_HANDLE) staging_ = create_buffer(kStagingBytes, MemoryKind::host_visible);
    const auto* bytes = static_cast<const unsigned char*>(src);
    for (std::size_t done = 0; done < n;) {
        std::size_t part = std::min<std::size_t>(n - done, kStagingBytes);
        std::memcpy(staging_.mapped(), bytes + done, part);
        VkCommandBuffer cmd = begin();
        VkBufferCopy region{0, dst_offset + done, part};
        vkCmdCopyBuffer(cmd, staging_.handle(), dst.handle(), 1, &region);
        submit();
        done += part;
    }
}

VkPipeline Context::pipeline(const std::string& variant) {
    auto it = pipelines_.find(variant);
    if (it != pipelines_.end()) return it->second;
    const EmbeddedShader* shader = find_embedded_shader(variant.c_str());
    if (!shader) throw BackendError(APR_ERR_INTERNAL, "no embedded shader named " + variant);
    std::vector<uint32_t> words((shader->size + 3) / 4);
    std::memcpy(words.data(), shader->spirv, shader->size);
    VkShaderModuleCreateInfo module_info{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    module_info.codeSize = shader->size;
    module_info.pCode = words.data();
    VkShaderModule module = VK_NULL_HANDLE;
    vk_check(vkCreateShaderModule(device_, &module_info, nullptr, &module), ("vkCreateShaderModule " + variant).c_str());
    VkComputePipelineCreateInfo info{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    info.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    info.stage.module = module;
    info.stage.pName = "main";
    info.layout = layout_;
    std::vector<VkSpecializationMapEntry> entries;
    VkSpecializationInfo spec{};
    for (const auto& [applies, values] : specializations_) {
        if (!applies(variant)) continue;
        for (uint32_t id = 0; id < values.size(); ++id)
            entries.push_back({id, static_cast<uint32_t>(id * sizeof(uint32_t)), sizeof(uint32_t)});
        spec.mapEntryCount = static_cast<uint32_t>(entries.size());
        spec.pMapEntries = entries.data();
        spec.dataSize = values.size() * sizeof(uint32_t);
        spec.pData = values.data();
        info.stage.pSpecializationInfo = &spec;
        break;
    }
    VkPipeline p = VK_NULL_HANDLE;
    VkResult r = vkCreateComputePipelines(device_, VK_NULL_HANDLE, 1, &info, nullptr, &p);
    vkDestroyShaderModule(device_, module, nullptr);
    vk_check(r, ("vkCreateComputePipelines " + variant).c_str());
    pipelines_.emplace(variant, p);
    return p;
}

void Context::specialize(std::function<bool(const std::string&)> applies, std::vector<uint32_t> values) {
    specializations_.emplace_back(std::move(applies), std::move(values));
}

VkCommandBuffer Context::begin(uint32_t slot) {
    VkCommandBuffer cmd = cmds_[slot];
    vk_check(vkResetCommandBuffer(cmd, 0), "vkResetCommandBuffer");
    VkCommandBufferBeginInfo info{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    info.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    vk_check(vkBeginCommandBuffer(cmd, &info), "vkBeginCommandBuffer");
    return cmd;
}

void Context::end(uint32_t slot) {
    // Make every write of the recorded work visible to the host before the fence signals.
    VkMemoryBarrier to_host{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    to_host.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    to_host.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(cmds_[slot], VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &to_host, 0,
                         nullptr, 0, nullptr);
    vk_check(vkEndCommandBuffer(cmds_[slot]), "vkEndCommandBuffer");
}

void Context::launch(uint32_t slot) {
    VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    submit.commandBufferCount = 1;
    submit.pCommandBuffers = &cmds_[slot];
    vk_check(vkResetFences(device_, 1, &fence_), "vkResetFences");
    vk_check(vkQueueSubmit(queue_, 1, &submit, fence_), "vkQueueSubmit");
}

void Context::wait() {
    vk_check(vkWaitForFences(device_, 1, &fence_, VK_TRUE, UINT64_MAX), "vkWaitForFences");
    profiler_->collect();
}

void Context::submit(uint32_t slot) {
    end(slot);
    launch(slot);
    wait();
}

}  // namespace apr_vulkan
