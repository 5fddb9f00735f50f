// GPU time per dispatch kind, from timestamp queries (APR_VULKAN_PROFILE=1). While profiling,
// every dispatch is followed by a full compute barrier and a timestamp, so each dispatch's time
// is the interval from the previous timestamp (dispatches that would overlap are serialized:
// the totals show where a step's time goes, not how fast the unprofiled step runs). Totals are
// kept apart for decode steps (one token) and prefill chunks, and printed to stderr when the
// session closes, with the host wall time of the same submissions.
#pragma once

#include <vulkan/vulkan.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace apr_vulkan {

class Profiler {
public:
    // Enabled when APR_VULKAN_PROFILE=1 and the queue family writes timestamps.
    Profiler(VkDevice device, VkPhysicalDevice physical, uint32_t queue_family);
    ~Profiler();
    Profiler(const Profiler&) = delete;
    Profiler& operator=(const Profiler&) = delete;

    bool enabled() const { return pool_ != VK_NULL_HANDLE; }
    // Starts the timeline of one submission (decode: a single-token step).
    void begin(VkCommandBuffer cmd, bool decode);
    // Ends the dispatch just recorded: barrier, then a timestamp attributed to `label`.
    void mark(VkCommandBuffer cmd, const std::string& label);
    // After the submission completed: reads the timestamps into the totals.
    void collect();

private:
    struct Total {
        double ms = 0;
        uint64_t count = 0;
    };
    void print() const;

    VkDevice device_ = VK_NULL_HANDLE;
    VkQueryPool pool_ = VK_NULL_HANDLE;
    double ns_per_tick_ = 1.0;
    uint64_t valid_mask_ = ~0ull;
    uint32_t used_ = 0;
    bool decode_ = false;
    bool overflowed_ = false;
    std::vector<std::string> labels_;  // label of timestamp i (i >= 1)
    std::map<std::string, Total> decode_totals_, prefill_totals_;
    uint64_t decode_steps_ = 0, prefill_chunks_ = 0;
    double decode_ms_ = 0, prefill_ms_ = 0;
    // Host wall time from begin() to collect(): recording, submission and the wait; what it
    // exceeds the GPU time by is the host's share of a step.
    std::chrono::steady_clock::time_point started_;
    double decode_wall_ms_ = 0, prefill_wall_ms_ = 0;
};

}  // namespace apr_vulkan
