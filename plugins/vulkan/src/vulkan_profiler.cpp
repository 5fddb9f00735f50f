#include "vulkan_profiler.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace apr_vulkan {

namespace {
// Timestamps one submission may write; a prefill chunk of a deep model needs ~20 per layer.
constexpr uint32_t kMaxQueries = 8192;
}  // namespace

Profiler::Profiler(VkDevice device, VkPhysicalDevice physical, uint32_t queue_family) : device_(device) {
    const char* env = std::getenv("APR_VULKAN_PROFILE");
    if (!env || std::strcmp(env, "1") != 0) return;
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(physical, &n, nullptr);
    std::vector<VkQueueFamilyProperties> families(n);
    vkGetPhysicalDeviceQueueFamilyProperties(physical, &n, families.data());
    VkPhysicalDeviceProperties props{};
    vkGetPhysicalDeviceProperties(physical, &props);
    const uint32_t bits = queue_family < n ? families[queue_family].timestampValidBits : 0;
    if (bits == 0 || props.limits.timestampPeriod <= 0) {
        std::fprintf(stderr, "[vulkan profile] the compute queue writes no timestamps; profiling is off\n");
        return;
    }
    valid_mask_ = bits >= 64 ? ~0ull : (1ull << bits) - 1;
    ns_per_tick_ = props.limits.timestampPeriod;
    VkQueryPoolCreateInfo info{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    info.queryType = VK_QUERY_TYPE_TIMESTAMP;
    info.queryCount = kMaxQueries;
    if (vkCreateQueryPool(device_, &info, nullptr, &pool_) != VK_SUCCESS) pool_ = VK_NULL_HANDLE;
}

Profiler::~Profiler() {
    if (pool_ == VK_NULL_HANDLE) return;
    print();
    vkDestroyQueryPool(device_, pool_, nullptr);
}

void Profiler::begin(VkCommandBuffer cmd, bool decode) {
    if (!enabled()) return;
    decode_ = decode;
    labels_.clear();
    started_ = std::chrono::steady_clock::now();
    vkCmdResetQueryPool(cmd, pool_, 0, kMaxQueries);
    vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, pool_, 0);
    used_ = 1;
}

void Profiler::mark(VkCommandBuffer cmd, const std::string& label) {
    if (!enabled()) return;
    if (used_ >= kMaxQueries) {
        overflowed_ = true;
        return;
    }
    VkMemoryBarrier b{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    b.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &b, 0,
                         nullptr, 0, nullptr);
    vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, pool_, used_++);
    labels_.push_back(label);
}

void Profiler::collect() {
    if (!enabled() || used_ < 2) return;
    std::vector<uint64_t> ticks(used_);
    if (vkGetQueryPoolResults(device_, pool_, 0, used_, ticks.size() * sizeof(uint64_t), ticks.data(),
                              sizeof(uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) != VK_SUCCESS)
        return;
    auto& totals = decode_ ? decode_totals_ : prefill_totals_;
    double step_ms = 0;
    for (uint32_t i = 1; i < used_; ++i) {
        const uint64_t d = (ticks[i] - ticks[i - 1]) & valid_mask_;
        const double ms = double(d) * ns_per_tick_ * 1e-6;
        Total& t = totals[labels_[i - 1]];
        t.ms += ms;
        ++t.count;
        step_ms += ms;
    }
    const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
    if (decode_) {
        ++decode_steps_;
        decode_ms_ += step_ms;
        decode_wall_ms_ += wall_ms;
    } else {
        ++prefill_chunks_;
        prefill_ms_ += step_ms;
        prefill_wall_ms_ += wall_ms;
    }
    used_ = 0;
}

void Profiler::print() const {
    auto table = [](const char* what, const std::map<std::string, Total>& totals, uint64_t steps, double all_ms,
                    double wall_ms) {
        if (steps == 0) return;
        std::fprintf(stderr,
                     "[vulkan profile] %s: %llu submissions, %.3f ms GPU time each (serialized dispatches), "
                     "%.3f ms host wall time each (record + submit + wait)\n",
                     what, static_cast<unsigned long long>(steps), all_ms / double(steps), wall_ms / double(steps));
        std::vector<std::pair<std::string, Total>> rows(totals.begin(), totals.end());
        std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
        for (const auto& [label, t] : rows)
            std::fprintf(stderr, "[vulkan profile]   %-34s %9.4f ms/submission %6.1f%%  %7.1f dispatches/submission  %8.2f us each\n",
                         label.c_str(), t.ms / double(steps), 100.0 * t.ms / all_ms, double(t.count) / double(steps),
                         1e3 * t.ms / double(t.count));
    };
    table("decode", decode_totals_, decode_steps_, decode_ms_, decode_wall_ms_);
    table("prefill", prefill_totals_, prefill_chunks_, prefill_ms_, prefill_wall_ms_);
    if (overflowed_) std::fprintf(stderr, "[vulkan profile] some submissions had more dispatches than timestamps; their tail is missing\n");
}

}  // namespace apr_vulkan
