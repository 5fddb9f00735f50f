// Test-only loading of one built backend plugin straight from its .so with dlopen, so a
// backend's tests exercise the plugin exactly as shipped, without the core's registry (as a
// third party's library), and a session that closes itself. Header-only, shared by the
// tests/cpu, tests/cuda and tests/vulkan units.
#pragma once

#include <apr/backend.h>
#include <dlfcn.h>

#include <stdexcept>
#include <string>

#include "support/testdata.hpp"

namespace apr::test {

// libapr_backend_<name>.so in the backends folder (support/testdata.hpp).
inline std::string plugin_path(const std::string& name) { return (backend_dir() / ("libapr_backend_" + name + ".so")).string(); }

class BackendPlugin {
public:
    // `device_kind` words the probe failure ("no usable CUDA device: ...").
    BackendPlugin(const std::string& path, std::string device_kind) : device_kind_(std::move(device_kind)) {
        handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!handle_) throw std::runtime_error("dlopen " + path + ": " + dlerror());
        desc_ = static_cast<const apr_backend_desc*>(dlsym(handle_, APR_BACKEND_DESCRIPTOR_SYMBOL));
        step_ = reinterpret_cast<apr_backend_step_fn>(dlsym(handle_, APR_BACKEND_STEP_SYMBOL));
        if (!desc_ || !step_) throw std::runtime_error(path + " lacks the ABI symbols");
    }
    ~BackendPlugin() { dlclose(handle_); }
    BackendPlugin(const BackendPlugin&) = delete;
    BackendPlugin& operator=(const BackendPlugin&) = delete;

    const apr_backend_desc& desc() const { return *desc_; }
    apr_backend_step_fn step_fn() const { return step_; }
    apr_status step(apr_session* s, const int32_t* tokens, uint32_t n, uint32_t pos, uint32_t flags, float* logits) const {
        return step_(s, tokens, n, pos, flags, logits);
    }
    std::string last_error() const { return desc_->last_error(); }

    // True when the probe finds a usable device; otherwise `why` holds the probe's reason.
    bool device_present(std::string& why, apr_device_info* info_out = nullptr) const {
        apr_device_info info{};
        info.struct_size = sizeof info;
        const apr_status s = desc_->probe(&info);
        if (info_out) *info_out = info;
        if (s == APR_OK) return true;
        why = "no usable " + device_kind_ + " device: " + last_error();
        return false;
    }

private:
    void* handle_ = nullptr;
    const apr_backend_desc* desc_ = nullptr;
    apr_backend_step_fn step_ = nullptr;
    std::string device_kind_;
};

// A session that closes itself; open_status()/open_error() say how open went.
class PluginSession {
public:
    PluginSession(const BackendPlugin& plugin, const apr_model_view& view, uint32_t n_ctx, uint32_t n_threads = 0)
        : plugin_(plugin) {
        apr_session_config config{};
        config.struct_size = sizeof config;
        config.n_ctx = n_ctx;
        config.n_threads = n_threads;
        status_ = plugin.desc().open(&view, &config, &session_);
        if (status_ != APR_OK) error_ = plugin.last_error();
    }
    ~PluginSession() { plugin_.desc().close(session_); }
    PluginSession(const PluginSession&) = delete;
    PluginSession& operator=(const PluginSession&) = delete;

    apr_status open_status() const { return status_; }
    const std::string& open_error() const { return error_; }
    apr_session* get() const { return session_; }

private:
    const BackendPlugin& plugin_;
    apr_session* session_ = nullptr;
    apr_status status_ = APR_ERR_INTERNAL;
    std::string error_;
};

}  // namespace apr::test
