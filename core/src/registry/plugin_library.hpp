// One loaded backend plugin: the shared library (Boost.DLL, RTLD_NOW | RTLD_LOCAL), its checked
// descriptor and step function, and calls into it that can never let a C++ exception or a
// null out-parameter through. Everything that goes wrong is a contract::Rejection.
#pragma once

#include <apr/backend.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "contract/parity_contract.hpp"
#include "registry/plugin_discovery.hpp"

namespace apr {

// Thrown by PluginLibrary and BackendSession: carries the stage and the reason.
struct RejectionError : std::exception {
    explicit RejectionError(contract::Rejection r, bool abandon = false)
        : rejection(std::move(r)), abandon_session(abandon) {}
    const char* what() const noexcept override { return rejection.reason.c_str(); }
    contract::Rejection rejection;
    // The plugin is still running a call that did not return (a hang): its session must be
    // neither closed nor unloaded, so it is leaked on purpose.
    bool abandon_session = false;
};

class BackendSession;

class PluginLibrary : public std::enable_shared_from_this<PluginLibrary> {
public:
    // Loads the file and checks the ABI before anything else: the descriptor symbol exists,
    // abi_version matches, struct_size covers this core's fields, every function pointer and
    // string is set, the name equals the file's <name>, the step symbol exists.
    // Throws RejectionError (stage load or abi).
    static std::shared_ptr<PluginLibrary> load(const PluginFile& file);
    ~PluginLibrary();

    const std::string& name() const { return name_; }
    const std::filesystem::path& path() const { return path_; }
    const apr_backend_desc& descriptor() const { return *desc_; }
    bool is_gpu() const { return (desc_->flags & APR_BACKEND_FLAG_GPU) != 0; }

    // Probes the device. Throws RejectionError (stage probe).
    apr_device_info probe();
    // Opens a session for `model`. Throws RejectionError (stage open).
    std::unique_ptr<BackendSession> open(const apr_model_view& model, const apr_session_config& config);

private:
    friend class BackendSession;
    PluginLibrary() = default;
    std::string plugin_error() const;  // the plugin's last_error text, guarded
    [[noreturn]] void reject(contract::Stage stage, const std::string& reason) const;

    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::string name_;
    std::filesystem::path path_;
    const apr_backend_desc* desc_ = nullptr;
    apr_backend_step_fn step_ = nullptr;
};

// An open session of a plugin. Keeps its library loaded for as long as it lives.
class BackendSession {
public:
    ~BackendSession();
    BackendSession(const BackendSession&) = delete;
    BackendSession& operator=(const BackendSession&) = delete;

    const std::string& name() const { return library_->name(); }
    PluginLibrary& library() { return *library_; }
    const apr_model_view& model() const { return *model_; }

    // apr_backend_step. Throws RejectionError (stage step) with the plugin's reason.
    void step(const int32_t* tokens, uint32_t n_tokens, uint32_t pos, bool all_logits, float* logits);

    // The device's copy rate, (bytes read + written) per second, through the descriptor's
    // optional measure_copy_rate. Empty when the plugin does not offer it or it failed (logged).
    std::optional<double> measure_copy_rate();

private:
    friend class PluginLibrary;
    BackendSession(std::shared_ptr<PluginLibrary> library, apr_session* session, const apr_model_view* model)
        : library_(std::move(library)), session_(session), model_(model) {}
    std::shared_ptr<PluginLibrary> library_;
    apr_session* session_;
    const apr_model_view* model_;
};

}  // namespace apr
