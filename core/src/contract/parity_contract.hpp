// The contract apr-cpu-vs-gpu-output-parity-v1: its tag and the exact shape of every line it
// prints. This is the only place these strings are spelled; tests/contract pins them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace apr::contract {

inline constexpr std::string_view kTag = "apr-cpu-vs-gpu-output-parity-v1";

// Where on its way to serving a backend failed.
enum class Stage { load, abi, probe, open, parity, step };
std::string_view stage_name(Stage stage);

// A backend leaving the race, and why. `reason` carries the numbers behind the decision.
struct Rejection {
    std::string backend;
    Stage stage;
    std::string reason;
};

// "[apr-cpu-vs-gpu-output-parity-v1] <backend> path rejected, attempting fallback: <stage>: <reason>"
std::string rejection_line(const Rejection& r);
// A backend forced alone with --backend never falls back:
// "[apr-cpu-vs-gpu-output-parity-v1] <backend> path rejected, no fallback (forced with --backend): <stage>: <reason>"
std::string forced_rejection_line(const Rejection& r);

// What the gate measured, for the Backend line.
struct GateSummary {
    double min_cosine = 1.0;
    uint32_t top1_agree = 0;
    uint32_t positions = 0;
    double seconds = 0.0;
    bool from_cache = false;
};

// "Backend: <backend> (<device>)", followed by the gate's figures when it ran:
// "Backend: vulkan (NVIDIA H200, Vulkan 1.3) — parity cos=0.99998 top1 11/11, gate 0.41 s"
// "... — parity cos=0.99998 top1 11/11, cached pass" when the parity cache answered.
std::string backend_line(std::string_view backend, std::string_view device,
                         const std::optional<GateSummary>& gate = std::nullopt);

// "override: parity gate skipped for <backend>"
std::string gate_skipped_line(std::string_view backend);

// The last words of apr-run when no backend passed:
// "error: no backend passed (N rejected):" then one "  <backend>: <stage>: <reason>" per rejection.
std::vector<std::string> nothing_passed_lines(const std::vector<Rejection>& rejections);

}  // namespace apr::contract
