#include "contract/parity_contract.hpp"

#include <cstdio>

namespace apr::contract {

std::string_view stage_name(Stage stage) {
    switch (stage) {
        case Stage::load: return "load";
        case Stage::abi: return "abi";
        case Stage::probe: return "probe";
        case Stage::open: return "open";
        case Stage::parity: return "parity";
        case Stage::step: return "step";
    }
    return "unknown";
}

namespace {
std::string tagged(std::string_view middle, const Rejection& r) {
    std::string line = "[";
    line += kTag;
    line += "] ";
    line += r.backend;
    line += middle;
    line += stage_name(r.stage);
    line += ": ";
    line += r.reason;
    return line;
}
}  // namespace

std::string rejection_line(const Rejection& r) { return tagged(" path rejected, attempting fallback: ", r); }

std::string forced_rejection_line(const Rejection& r) {
    return tagged(" path rejected, no fallback (forced with --backend): ", r);
}

std::string backend_line(std::string_view backend, std::string_view device, const std::optional<GateSummary>& gate) {
    std::string line = "Backend: ";
    line += backend;
    line += " (";
    line += device;
    line += ")";
    if (gate) {
        char buf[160];
        std::snprintf(buf, sizeof buf, " \u2014 parity cos=%.5f top1 %u/%u, ", gate->min_cosine, gate->top1_agree,
                      gate->positions);
        line += buf;
        if (gate->from_cache) {
            line += "cached pass";
        } else {
            std::snprintf(buf, sizeof buf, "gate %.2f s", gate->seconds);
            line += buf;
        }
    }
    return line;
}

std::string gate_skipped_line(std::string_view backend) {
    std::string line = "override: parity gate skipped for ";
    line += backend;
    return line;
}

std::vector<std::string> nothing_passed_lines(const std::vector<Rejection>& rejections) {
    std::vector<std::string> lines;
    lines.push_back("error: no backend passed (" + std::to_string(rejections.size()) + " rejected):");
    for (const auto& r : rejections)
        lines.push_back("  " + r.backend + ": " + std::string(stage_name(r.stage)) + ": " + r.reason);
    return lines;
}

}  // namespace apr::contract
