// Test-only loading of libapr_backend_vulkan.so straight from the build tree with dlopen, so
// the Vulkan tests exercise the plugin exactly as shipped, without the core's registry.
// Header-only: the test build compiles only *_test.cpp files from unit folders.
#pragma once

#include <apr/backend.h>
#include <dlfcn.h>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/testdata.hpp"

namespace apr::test {

class VulkanPlugin {
public:
    VulkanPlugin() {
        const std::string path = (backend_dir() / "libapr_backend_vulkan.so").string();
        handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!handle_) throw std::runtime_error("dlopen " + path + ": " + dlerror());
        desc_ = static_cast<const apr_backend_desc*>(dlsym(handle_, APR_BACKEND_DESCRIPTOR_SYMBOL));
        step_ = reinterpret_cast<apr_backend_step_fn>(dlsym(handle_, APR_BACKEND_STEP_SYMBOL));
        if (!desc_ || !step_) throw std::runtime_error(path + " lacks the ABI symbols");
    }
    ~VulkanPlugin() { dlclose(handle_); }
    VulkanPlugin(const VulkanPlugin&) = delete;
    VulkanPlugin& operator=(const VulkanPlugin&) = delete;

    const apr_backend_desc& desc() const { return *desc_; }
    apr_status step(apr_session* s, const int32_t* tokens, uint32_t n, uint32_t pos, uint32_t flags, float* logits) const {
        return step_(s, tokens, n, pos, flags, logits);
    }
    std::string last_error() const { return desc_->last_error(); }

    // True when a Vulkan device answers the probe; otherwise `why` says what the probe reported.
    bool device_present(std::string& why, apr_device_info* info_out = nullptr) const {
        apr_device_info info{};
        info.struct_size = sizeof info;
        apr_status s = desc_->probe(&info);
        if (info_out) *info_out = info;
        if (s == APR_OK) return true;
        why = "no Vulkan device: " + last_error();
        return false;
    }

private:
    void* handle_ = nullptr;
    const apr_backend_desc* desc_ = nullptr;
    apr_backend_step_fn step_ = nullptr;
};

// A session that closes itself.
class VulkanSession {
public:
    VulkanSession(const VulkanPlugin& plugin, const apr_model_view& view, uint32_t n_ctx) : plugin_(plugin) {
        apr_session_config config{};
        config.struct_size = sizeof config;
        config.n_ctx = n_ctx;
        status_ = plugin.desc().open(&view, &config, &session_);
        if (status_ != APR_OK) error_ = plugin.last_error();
    }
    ~VulkanSession() { plugin_.desc().close(session_); }
    VulkanSession(const VulkanSession&) = delete;
    VulkanSession& operator=(const VulkanSession&) = delete;

    apr_status open_status() const { return status_; }
    const std::string& open_error() const { return error_; }
    apr_session* get() const { return session_; }

private:
    const VulkanPlugin& plugin_;
    apr_session* session_ = nullptr;
    apr_status status_ = APR_ERR_INTERNAL;
    std::string error_;
};

// Cosine similarity (f64 sums) and max |a - b| of two logit rows.
struct RowDiff {
    double cosine = 1.0;
    double max_abs = 0.0;
    bool finite = true;
};
inline RowDiff compare_rows(const float* a, const float* b, size_t n) {
    RowDiff d;
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(a[i])) d.finite = false;
        dot += double(a[i]) * b[i];
        na += double(a[i]) * a[i];
        nb += double(b[i]) * b[i];
        d.max_abs = std::max(d.max_abs, std::abs(double(a[i]) - b[i]));
    }
    d.cosine = (na > 0 && nb > 0) ? dot / std::sqrt(na * nb) : (na == nb ? 1.0 : 0.0);
    return d;
}

}  // namespace apr::test
