#include "vulkan_copy_rate.hpp"

#include <chrono>

#include "vulkan_error.hpp"

namespace apr_vulkan {
namespace {

// 1 GiB per buffer (20x an H200's L2) where the device can hold it, halved down to 64 MiB
// otherwise. A CPU implementation (lavapipe) copies host memory: 256 MiB is already far past
// its caches and keeps the measurement short there.
constexpr VkDeviceSize kLargest = VkDeviceSize(1) << 30, kSmallest = VkDeviceSize(64) << 20;
constexpr VkDeviceSize kLargestOnCpu = VkDeviceSize(256) << 20;
// Copies per submission, so the submission's own latency is a small part of the time; the
// best of kPasses timed submissions counts (one more warms up first).
constexpr int kCopiesPerPass = 4, kPasses = 3;

}  // namespace

double measure_copy_rate(Context& ctx) {
    VkPhysicalDeviceProperties props{};
    vkGetPhysicalDeviceProperties(ctx.device().physical, &props);
    VkDeviceSize bytes = props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU ? kLargestOnCpu : kLargest;
    Buffer a, b;
    for (;;) {
        try {
            a = ctx.create_buffer(bytes, MemoryKind::device_local);
            b = ctx.create_buffer(bytes, MemoryKind::device_local);
            break;
        } catch (const BackendError& e) {
            a.reset();
            b.reset();
            if (e.status() != APR_ERR_OUT_OF_MEMORY || bytes <= kSmallest) throw;
            bytes /= 2;
        }
    }
    double best_s = 0.0;
    for (int pass = 0; pass <= kPasses; ++pass) {
        VkCommandBuffer cmd = ctx.begin();
        for (int i = 0; i < kCopiesPerPass; ++i) {
            // Alternate directions; each copy waits for the one before (it reads what that wrote).
            const Buffer& src = i % 2 ? b : a;
            const Buffer& dst = i % 2 ? a : b;
            const VkBufferCopy region{0, 0, bytes};
            vkCmdCopyBuffer(cmd, src.handle(), dst.handle(), 1, &region);
            VkMemoryBarrier barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
            barrier.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
            barrier.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
            vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &barrier, 0,
                                 nullptr, 0, nullptr);
        }
        const auto start = std::chrono::steady_clock::now();
        ctx.submit();  // submits and waits
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (pass > 0 && (best_s == 0.0 || s < best_s)) best_s = s;
    }
    if (best_s <= 0.0) throw BackendError(APR_ERR_INTERNAL, "copy rate: the copies took no measurable time");
    return 2.0 * static_cast<double>(bytes) * kCopiesPerPass / best_s;
}

}  // namespace apr_vulkan
