#include "registry/backend_report.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "text/json_string.hpp"

namespace apr {

std::vector<BackendReportEntry> build_backend_report(const BackendRegistry& registry, const SelectionOptions& options,
                                                     const ReportCheckFn& check) {
    std::vector<contract::Rejection> unavailable;
    std::vector<std::string> skipped;
    std::vector<Candidate> ordered = registry.order(options, unavailable, skipped);

    std::vector<BackendReportEntry> entries;
    for (const auto& file : registry.files()) {
        BackendReportEntry e;
        e.name = file.name;
        e.path = file.path.string();
        e.origin = file.origin;
        if (file.shadowed) {
            e.shadowed_by = file.shadowed_by.string();
            e.status = "shadowed";
            entries.push_back(std::move(e));
            continue;
        }
        auto winner = std::find_if(registry.winners().begin(), registry.winners().end(),
                                   [&](const Candidate& c) { return c.file.path == file.path; });
        if (winner != registry.winners().end() && winner->peek) {
            e.abi_version = winner->peek->abi_version;
            e.priority = winner->peek->priority;
            if (winner->peek->flags) e.kind = (*winner->peek->flags & APR_BACKEND_FLAG_GPU) ? "gpu" : "cpu";
        }
        if (std::find(skipped.begin(), skipped.end(), file.name) != skipped.end()) {
            e.status = "skipped (--no-gpu)";
            entries.push_back(std::move(e));
            continue;
        }
        try {
            // A file another user could have planted is never loaded, not even to describe it.
            if (!file.refused.empty()) throw RejectionError(contract::Rejection{file.name, contract::Stage::load, file.refused});
            auto library = PluginLibrary::load(file);
            const apr_backend_desc& d = library->descriptor();
            e.plugin_version = d.plugin_version;
            e.display_name = d.display_name;
            e.abi_version = d.abi_version;
            e.priority = d.priority;
            e.kind = (d.flags & APR_BACKEND_FLAG_GPU) ? "gpu" : "cpu";
            apr_device_info info = library->probe();
            e.device = info.description;
            e.driver = info.driver;
            e.status = "usable";
            if (check) {
                if (auto rejected = check(*library, info)) {
                    e.status = "rejected";
                    e.rejection = rejected;
                } else {
                    e.status = "passed";
                }
            }
        } catch (const RejectionError& err) {
            e.status = "rejected";
            e.rejection = err.rejection;
        }
        entries.push_back(std::move(e));
    }
    for (const auto& r : unavailable) {
        BackendReportEntry e;
        e.name = r.backend;
        e.status = "rejected";
        e.rejection = r;
        entries.push_back(std::move(e));
    }
    return entries;
}

std::string render_backend_report_text(const std::vector<BackendReportEntry>& entries,
                                       const std::vector<SearchFolder>& searched) {
    std::ostringstream out;
    if (entries.empty()) out << "no backend plugin files found\n";
    for (const auto& e : entries) {
        out << e.name << "  " << (e.path.empty() ? "(no file)" : e.path);
        if (!e.origin.empty()) out << "  [" << e.origin << "]";
        out << "\n";
        if (!e.shadowed_by.empty()) {
            out << "    shadowed by " << e.shadowed_by << "\n";
            continue;
        }
        if (!e.plugin_version.empty())
            out << "    " << e.display_name << " " << e.plugin_version << ", ABI " << e.abi_version.value_or(0)
                << ", priority " << e.priority.value_or(0) << ", " << e.kind << "\n";
        if (!e.device.empty()) out << "    device: " << e.device << (e.driver.empty() ? "" : " [" + e.driver + "]") << "\n";
        out << "    status: " << e.status;
        if (e.rejection)
            out << " at " << contract::stage_name(e.rejection->stage) << ": " << e.rejection->reason;
        out << "\n";
    }
    out << "searched, in order:\n";
    if (searched.empty()) out << "    (no folders)\n";
    for (const SearchFolder& f : searched)
        out << "    " << f.path.string() << "  [" << f.origin << "]" << (f.exists ? "" : "  (not a folder: skipped)") << "\n";
    return out.str();
}

std::string render_backend_report_json(const std::vector<BackendReportEntry>& entries,
                                       const std::vector<SearchFolder>& searched) {
    std::ostringstream out;
    out << "{\"backends\": [";
    for (size_t i = 0; i < entries.size(); ++i) {
        const auto& e = entries[i];
        out << (i ? ",\n  " : "\n  ") << "{\"name\": " << json_string(e.name)
            << ", \"path\": " << (e.path.empty() ? "null" : json_string(e.path))
            << ", \"origin\": " << (e.origin.empty() ? "null" : json_string(e.origin))
            << ", \"shadowed_by\": " << (e.shadowed_by.empty() ? "null" : json_string(e.shadowed_by))
            << ", \"display_name\": " << (e.display_name.empty() ? "null" : json_string(e.display_name))
            << ", \"plugin_version\": " << (e.plugin_version.empty() ? "null" : json_string(e.plugin_version))
            << ", \"abi_version\": " << (e.abi_version ? std::to_string(*e.abi_version) : "null")
            << ", \"priority\": " << (e.priority ? std::to_string(*e.priority) : "null")
            << ", \"kind\": " << (e.kind.empty() ? "null" : json_string(e.kind))
            << ", \"device\": " << (e.device.empty() ? "null" : json_string(e.device))
            << ", \"driver\": " << (e.driver.empty() ? "null" : json_string(e.driver))
            << ", \"status\": " << json_string(e.status);
        if (e.rejection)
            out << ", \"rejection\": {\"stage\": " << json_string(std::string(contract::stage_name(e.rejection->stage)))
                << ", \"reason\": " << json_string(e.rejection->reason) << "}";
        else
            out << ", \"rejection\": null";
        out << "}";
    }
    out << "\n], \"searched\": [";
    for (size_t i = 0; i < searched.size(); ++i)
        out << (i ? ", " : "") << "{\"path\": " << json_string(searched[i].path.string())
            << ", \"origin\": " << json_string(searched[i].origin) << ", \"exists\": " << (searched[i].exists ? "true" : "false")
            << "}";
    out << "]}\n";
    return out.str();
}

}  // namespace apr
