// Test-only loading of libapr_backend_cuda.so from the build tree with dlopen, so the CUDA tests
// exercise the plugin exactly as shipped, without the core's registry; plus logit comparison
// helpers. Header-only: the test build compiles only *_test.cpp files from unit folders.
#pragma once

#include <apr/backend.h>
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/testdata.hpp"

namespace apr::test {

// The folder holding the plugin: APR_TEST_CUDA_BACKEND_DIR when set (to run a copied test binary
// on another machine), else the build tree's backends folder.
inline std::filesystem::path cuda_backend_dir() {
    const char* dir = std::getenv("APR_TEST_CUDA_BACKEND_DIR");
    return dir && *dir ? std::filesystem::path(dir) : backend_dir();
}

class CudaPlugin {
public:
    CudaPlugin() {
        const std::string path = (cuda_backend_dir() / "libapr_backend_cuda.so").string();
        handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!handle_) throw std::runtime_error("dlopen " + path + ": " + dlerror());
        desc_ = static_cast<const apr_backend_desc*>(dlsym(handle_, APR_BACKEND_DESCRIPTOR_SYMBOL));
        step_ = reinterpret_cast<apr_backend_step_fn>(dlsym(handle_, APR_BACKEND_STEP_SYMBOL));
        if (!desc_ || !step_) throw std::runtime_error(path + " lacks the ABI symbols");
    }
    ~CudaPlugin() { dlclose(handle_); }
    CudaPlugin(const CudaPlugin&) = delete;
    CudaPlugin& operator=(const CudaPlugin&) = delete;

    const apr_backend_desc& desc() const { return *desc_; }
    apr_status step(apr_session* s, const int32_t* tokens, uint32_t n, uint32_t pos, uint32_t flags,
                    float* logits) const {
        return step_(s, tokens, n, pos, flags, logits);
    }
    std::string last_error() const { return desc_->last_error(); }

    // True when the probe finds a usable GPU; otherwise `why` holds the probe's reason.
    bool device_present(std::string& why, apr_device_info* info_out = nullptr) const {
        apr_device_info info{};
        info.struct_size = sizeof info;
        const apr_status s = desc_->probe(&info);
        if (info_out) *info_out = info;
        if (s == APR_OK) return true;
        why = "no usable CUDA device: " + last_error();
        return false;
    }

private:
    void* handle_ = nullptr;
    const apr_backend_desc* desc_ = nullptr;
    apr_backend_step_fn step_ = nullptr;
};

// A session that closes itself.
class CudaSession {
public:
    CudaSession(const CudaPlugin& plugin, const apr_model_view& view, uint32_t n_ctx) : plugin_(plugin) {
        apr_session_config config{};
        config.struct_size = sizeof config;
        config.n_ctx = n_ctx;
        status_ = plugin.desc().open(&view, &config, &session_);
        if (status_ != APR_OK) error_ = plugin.last_error();
    }
    ~CudaSession() { plugin_.desc().close(session_); }
    CudaSession(const CudaSession&) = delete;
    CudaSession& operator=(const CudaSession&) = delete;

    apr_status open_status() const { return status_; }
    const std::string& open_error() const { return error_; }
    apr_session* get() const { return session_; }

private:
    const CudaPlugin& plugin_;
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

// The worst row seen so far.
struct Worst {
    double cosine = 1.0;
    double max_abs = 0.0;
    void add(const RowDiff& d) {
        cosine = std::min(cosine, d.cosine);
        max_abs = std::max(max_abs, d.max_abs);
    }
};

inline size_t argmax(const float* row, size_t n) { return size_t(std::max_element(row, row + n) - row); }

}  // namespace apr::test
