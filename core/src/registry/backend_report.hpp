// What `apr-run --list-backends` says: every plugin file found, where, whether it is shadowed,
// and how far it got (loaded, ABI, probe; open and gate too when a model is given).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "registry/backend_registry.hpp"

namespace apr {

struct BackendReportEntry {
    std::string name;
    std::string path;
    std::string origin;
    std::string shadowed_by;     // non-empty when shadowed
    std::string plugin_version;  // from the descriptor, once loaded
    std::string display_name;
    std::optional<uint32_t> abi_version;
    std::optional<int32_t> priority;
    std::string kind;            // "cpu", "gpu" or "" when unknown
    std::string device;          // probe's description
    std::string driver;
    std::string status;          // "usable", "passed", "shadowed", "skipped (--no-gpu)", "rejected"
    std::optional<contract::Rejection> rejection;
};

// Loads and probes every winning file (GPU ones not at all under --no-gpu). `check` is called
// after a successful probe of each backend to go further (open + gate with a model); it
// returns nullopt when it passed, or the rejection.
using ReportCheckFn = std::function<std::optional<contract::Rejection>(PluginLibrary& library, const apr_device_info& device)>;
std::vector<BackendReportEntry> build_backend_report(const BackendRegistry& registry, const SelectionOptions& options,
                                                     const ReportCheckFn& check = {});

// Both end with the folders searched, in order (a missing one marked), so an empty or
// surprising list says where apr looked.
std::string render_backend_report_text(const std::vector<BackendReportEntry>& entries,
                                       const std::vector<SearchFolder>& searched);
std::string render_backend_report_json(const std::vector<BackendReportEntry>& entries,
                                       const std::vector<SearchFolder>& searched);

}  // namespace apr
