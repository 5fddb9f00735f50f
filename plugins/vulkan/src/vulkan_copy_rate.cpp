#include "vulkan_copy_rate.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>

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
constexpr uint32_t kGroupSize = 256;  // copy_words.comp's local_size_x

// Records one copy of `bytes` from src to dst.
using RecordCopy = std::function<void(VkCommandBuffer, const Buffer& src, const Buffer& dst)>;

// (bytes read + written) per second of the best pass of kCopiesPerPass copies back and forth.
double timed_copies(Context& ctx, const Buffer& a, const Buffer& b, VkDeviceSize bytes, const RecordCopy& record,
                    VkPipelineStageFlags stage, VkAccessFlags write, VkAccessFlags read) {
    double best_s = 0.0;
    for (int pass = 0; pass <= kPasses; ++pass) {
        VkCommandBuffer cmd = ctx.begin();
        for (int i = 0; i < kCopiesPerPass; ++i) {
            // Alternate directions; each copy waits for the one before (it reads what that wrote).
            record(cmd, i % 2 ? b : a, i % 2 ? a : b);
            VkMemoryBarrier barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
            barrier.srcAccessMask = write;
            barrier.dstAccessMask = read | write;
            vkCmdPipelineBarrier(cmd, stage, stage, 0, 1, &barrier, 0, nullptr, 0, nullptr);
        }
        const auto start = std::chrono::steady_clock::now();
        ctx.submit();  // submits and waits
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (pass > 0 && (best_s == 0.0 || s < best_s)) best_s = s;
    }
    if (best_s <= 0.0) throw BackendError(APR_ERR_INTERNAL, "copy rate: the copies took no measurable time");
    return 2.0 * static_cast<double>(bytes) * kCopiesPerPass / best_s;
}

}  // namespace

double measure_copy_rate(Context& ctx) {
    VkPhysicalDeviceProperties props{};
    vkGetPhysicalDeviceProperties(ctx.device().physical, &props);
    const bool cpu_device = props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    VkDeviceSize bytes = cpu_device ? kLargestOnCpu : kLargest;
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

    // The transfer command: a CPU implementation runs it as a memcpy, the fastest it has.
    const double transfer = timed_copies(
        ctx, a, b, bytes,
        [&](VkCommandBuffer cmd, const Buffer& src, const Buffer& dst) {
            const VkBufferCopy region{0, 0, bytes};
            vkCmdCopyBuffer(cmd, src.handle(), dst.handle(), 1, &region);
        },
        VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT, VK_ACCESS_TRANSFER_READ_BIT);
    if (cpu_device) return transfer;  // its shaders are far slower than its memcpy

    // A shader copy (copy_words.comp): a GPU may run transfers issued on a compute queue on a
    // slow path (NVIDIA's H200 driver: ~0.85 TB/s, where shaders stream ~4 TB/s). The device's
    // rate is the faster of the two.
    struct CopyParams {
        VkDeviceAddress src, dst;
        uint32_t n, stride;
    };
    const uint32_t words = static_cast<uint32_t>(bytes / 16);
    const uint32_t groups = std::min<uint32_t>((words + 4 * kGroupSize - 1) / (4 * kGroupSize),
                                               props.limits.maxComputeWorkGroupCount[0]);
    const VkPipeline pipeline = ctx.pipeline("copy_words");
    const double shader = timed_copies(
        ctx, a, b, bytes,
        [&](VkCommandBuffer cmd, const Buffer& src, const Buffer& dst) {
            const CopyParams p{src.address(), dst.address(), words, groups * kGroupSize};
            vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
            vkCmdPushConstants(cmd, ctx.pipeline_layout(), VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof p, &p);
            vkCmdDispatch(cmd, groups, 1, 1);
        },
        VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT, VK_ACCESS_SHADER_READ_BIT);
    return std::max(transfer, shader);
}

}  // namespace apr_vulkan
