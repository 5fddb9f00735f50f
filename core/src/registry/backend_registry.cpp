#include "registry/backend_registry.hpp"

#include <algorithm>
#include <mutex>
#include <stdexcept>

#include "isolation/isolated_gate.hpp"
#include "log/log.hpp"

namespace apr {

using contract::Rejection;
using contract::Stage;

std::vector<std::string> parse_backend_list(const std::string& list) {
    std::vector<std::string> names;
    size_t start = 0;
    while (start <= list.size()) {
        size_t comma = list.find(',', start);
        if (comma == std::string::npos) comma = list.size();
        std::string name = list.substr(start, comma - start);
        name.erase(0, name.find_first_not_of(' '));
        name.erase(name.find_last_not_of(' ') + 1);
        if (name.empty()) throw std::invalid_argument("empty backend name in '" + list + "'");
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
        start = comma + 1;
    }
    return names;
}

bool Candidate::maybe_gpu() const {
    if (!peek || !peek->flags) return true;
    return (*peek->flags & APR_BACKEND_FLAG_GPU) != 0 || (*peek->flags & APR_BACKEND_FLAG_CPU) == 0;
}

BackendRegistry::BackendRegistry(std::vector<PluginFile> files) : files_(std::move(files)) {
    for (const auto& f : files_) {
        if (f.shadowed) continue;
        Candidate c;
        c.file = f;
        if (f.refused.empty()) c.peek = peek_descriptor(f.path, c.peek_error);  // a refused file is not even read
        else c.peek_error = f.refused;
        winners_.push_back(std::move(c));
    }
}

BackendRegistry BackendRegistry::discover(const PluginSearchPath& search) {
    return BackendRegistry(discover_plugins(search));
}

std::vector<Candidate> BackendRegistry::order(const SelectionOptions& options, std::vector<Rejection>& unavailable,
                                              std::vector<std::string>& skipped) const {
    std::vector<Candidate> ordered;
    if (!options.backends.empty()) {
        for (const auto& name : options.backends) {
            auto it = std::find_if(winners_.begin(), winners_.end(), [&](const Candidate& c) { return c.file.name == name; });
            if (it == winners_.end())
                unavailable.push_back(Rejection{name, Stage::load, "no plugin file libapr_backend_" + name + ".so was found"});
            else
                ordered.push_back(*it);
        }
    } else {
        ordered = winners_;
        // Higher priority first; a file whose priority cannot be read from it goes last.
        std::stable_sort(ordered.begin(), ordered.end(), [](const Candidate& a, const Candidate& b) {
            int64_t pa = a.peek && a.peek->priority ? *a.peek->priority : INT64_MIN;
            int64_t pb = b.peek && b.peek->priority ? *b.peek->priority : INT64_MIN;
            if (pa != pb) return pa > pb;
            return a.file.name < b.file.name;
        });
    }
    if (options.no_gpu) {
        std::vector<Candidate> cpu_only;
        for (auto& c : ordered) {
            if (c.maybe_gpu()) skipped.push_back(c.file.name);
            else cpu_only.push_back(std::move(c));
        }
        ordered = std::move(cpu_only);
    }
    return ordered;
}

BackendSelector::BackendSelector(const BackendRegistry& registry, const SelectionOptions& options,
                                 const apr_model_view& model, const apr_session_config& config, GateFn gate)
    : model_(model), config_(config), gate_(std::move(gate)), isolate_gate_(options.isolate_gate) {
    std::vector<std::string> skipped;
    queue_ = registry.order(options, pending_, skipped);
    forced_single_ = options.backends.size() == 1;
    for (const auto& name : skipped) log::get().debug("{}: not loaded (--no-gpu keeps CPU backends only)", name);
}

namespace {

// Sessions whose plugin never returned from a call: they may be neither closed nor unloaded
// (the stuck thread still runs in them), so they are kept here for the life of the process,
// deliberately, instead of being leaked anonymously (LeakSanitizer sees them as reachable).
void abandon(std::unique_ptr<BackendSession> session) {
    static std::mutex guard;
    static std::vector<std::unique_ptr<BackendSession>>* abandoned = new std::vector<std::unique_ptr<BackendSession>>();
    std::lock_guard lock(guard);
    abandoned->push_back(std::move(session));  // never destroyed: the vector itself is never freed
}

}  // namespace

void BackendSelector::record(const Rejection& rejection) {
    rejections_.push_back(rejection);
    log::get().info(forced_single_ ? contract::forced_rejection_line(rejection) : contract::rejection_line(rejection));
}

void BackendSelector::reject_serving(const Rejection& rejection) { record(rejection); }

std::optional<ServingBackend> BackendSelector::next() {
    for (const auto& r : pending_) record(r);
    pending_.clear();
    if (forced_single_ && !rejections_.empty()) return std::nullopt;
    while (next_index_ < queue_.size()) {
        const Candidate& candidate = queue_[next_index_++];
        ServingBackend serving;
        try {
            if (!candidate.file.refused.empty())
                throw RejectionError(Rejection{candidate.file.name, Stage::load, candidate.file.refused});
            std::optional<IsolatedPass> isolated;
            if (isolate_gate_) {
                IsolatedOutcome outcome =
                    run_isolated_gate(candidate.file, model_, config_, gate_, isolation_limits_from_env());
                if (auto* rejected = std::get_if<Rejection>(&outcome)) throw RejectionError(*rejected);
                isolated = std::get<IsolatedPass>(outcome);
            }
            auto library = PluginLibrary::load(candidate.file);
            serving.device = library->probe();
            log::get().debug("{}: probe found {} ({})", library->name(), serving.device.description, serving.device.driver);
            serving.session = library->open(model_, config_);
            // Isolated, the child's gate already passed this plugin on this model: trusted.
            if (isolated) serving.gate = isolated->gate;
            else serving.gate = gate_ ? gate_(*serving.session, serving.device) : std::nullopt;
            return serving;
        } catch (const RejectionError& e) {
            if (e.abandon_session) abandon(std::move(serving.session));
            record(e.rejection);
        }
        if (forced_single_) return std::nullopt;
    }
    return std::nullopt;
}

}  // namespace apr
