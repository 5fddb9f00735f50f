// BackendRegistry: the plugin files found on this machine and the order in which they are
// tried (DESIGN.md "Choosing a backend"). BackendSelector walks that order — load, ABI check,
// probe, open, gate — printing one tagged rejection line per failure, and hands out the first
// backend that passes; asked again (failover), it goes on where it stopped.
#pragma once

#include <apr/backend.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "contract/parity_contract.hpp"
#include "registry/descriptor_peek.hpp"
#include "registry/plugin_discovery.hpp"
#include "registry/plugin_library.hpp"

namespace apr {

struct SelectionOptions {
    std::vector<std::string> backends;  // --backend a,b,c or APR_BACKEND; empty = by priority
    bool no_gpu = false;                // --no-gpu: CPU backends only, GPU files never loaded
    // --isolate-gate / APR_ISOLATE_GATE=1: load, probe, open and gate each candidate in a child
    // process first (isolation/isolated_gate.hpp); a crash or hang there is a rejection.
    bool isolate_gate = false;
};

// Parses "a,b,c" (spaces allowed around names). Throws std::invalid_argument on an empty name.
std::vector<std::string> parse_backend_list(const std::string& list);

struct Candidate {
    PluginFile file;
    std::optional<DescriptorPeek> peek;  // read from the file without loading it
    std::string peek_error;
    // GPU according to the peeked flags; a file whose flags cannot be read counts as GPU
    // for --no-gpu (it is not loaded to find out).
    bool maybe_gpu() const;
};

class BackendRegistry {
public:
    explicit BackendRegistry(std::vector<PluginFile> files);
    static BackendRegistry discover(const PluginSearchPath& search);

    // Every file found, shadowed ones included, in search order.
    const std::vector<PluginFile>& files() const { return files_; }
    // The winning file of each backend name, with its peeked descriptor.
    const std::vector<Candidate>& winners() const { return winners_; }

    // The candidates to try, in order. A name asked for with no file becomes a `load`
    // rejection in `unavailable`; with --no-gpu, GPU candidates are left out (`skipped`).
    std::vector<Candidate> order(const SelectionOptions& options, std::vector<contract::Rejection>& unavailable,
                                 std::vector<std::string>& skipped) const;

private:
    std::vector<PluginFile> files_;
    std::vector<Candidate> winners_;
};

// The backend that serves, with what it said about its device and what its gate measured.
struct ServingBackend {
    std::unique_ptr<BackendSession> session;
    apr_device_info device{};
    std::optional<contract::GateSummary> gate;  // nullopt when the gate was skipped
};

// Runs between open and serving. Returns the gate's figures, nullopt when it was skipped by
// an override, or throws RejectionError (stage parity).
using GateFn = std::function<std::optional<contract::GateSummary>(BackendSession& session, const apr_device_info& device)>;

class BackendSelector {
public:
    BackendSelector(const BackendRegistry& registry, const SelectionOptions& options, const apr_model_view& model,
                    const apr_session_config& config, GateFn gate);

    // The next backend that passes every stage, printing a rejection line for each one that
    // does not; nullopt when none is left. A single backend forced with --backend is never
    // followed by another one.
    std::optional<ServingBackend> next();

    // Rejects the backend now serving (stage step, mid-generation) with the tagged line, so
    // that next() can take over. The session must already be closed or about to be.
    void reject_serving(const contract::Rejection& rejection);

    const std::vector<contract::Rejection>& rejections() const { return rejections_; }
    bool forced_single() const { return forced_single_; }

private:
    void record(const contract::Rejection& rejection);

    const apr_model_view& model_;
    apr_session_config config_;
    GateFn gate_;
    std::vector<Candidate> queue_;
    size_t next_index_ = 0;
    std::vector<contract::Rejection> pending_;  // unavailable names, reported on the first next()
    std::vector<contract::Rejection> rejections_;
    bool forced_single_ = false;
    bool isolate_gate_ = false;
};

}  // namespace apr
