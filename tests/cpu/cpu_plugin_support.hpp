// Test-only access to the built CPU plugin (support/backend_plugin.hpp: no registry, these
// tests look at the plugin as a third party's library): sessions through its ABI that throw
// on failure, the kernel-path switches, and logit rows compared against tolerances.
// Header-only: the test build compiles only *_test.cpp files from unit folders.
#pragma once

#include <apr/backend.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/backend_plugin.hpp"
#include "support/logit_rows.hpp"

namespace apr::test::cpu {

// The plugin, loaded once for the whole test run.
inline const BackendPlugin& cpu_plugin() {
    static const BackendPlugin plugin(plugin_path("cpu"), "CPU");
    return plugin;
}

// Sets an environment variable the plugin reads at probe/open (APR_CPU_ISA, APR_CPU_KV_TYPE)
// while it lives; "" unsets it.
class ScopedEnv {
public:
    ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
        if (const char* old = std::getenv(name_.c_str())) old_ = old, had_ = true;
        if (value.empty()) unsetenv(name_.c_str());
        else setenv(name_.c_str(), value.c_str(), 1);
    }
    ~ScopedEnv() {
        if (had_) setenv(name_.c_str(), old_.c_str(), 1);
        else unsetenv(name_.c_str());
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    std::string name_, old_;
    bool had_ = false;
};

// Forces the plugin's kernel path ("" = its own choice).
class ScopedIsa : public ScopedEnv {
public:
    explicit ScopedIsa(const std::string& isa) : ScopedEnv("APR_CPU_ISA", isa) {}
};

// The kernel paths this CPU can run, as APR_CPU_ISA values (found by asking the plugin).
inline std::vector<std::string> available_isas() {
    std::vector<std::string> isas;
    for (const char* isa : {"scalar", "avx2", "avx512"}) {
        ScopedIsa scoped(isa);
        apr_device_info info{};
        info.struct_size = sizeof info;
        if (cpu_plugin().desc().probe(&info) == APR_OK) isas.push_back(isa);
    }
    return isas;
}

// An open session, closed on destruction.
class Session {
public:
    Session(const apr_model_view& view, uint32_t n_ctx, uint32_t n_threads = 2) {
        apr_session_config config{};
        config.struct_size = sizeof config;
        config.n_ctx = n_ctx;
        config.n_threads = n_threads;
        const apr_status st = plugin().desc().open(&view, &config, &session_);
        if (st != APR_OK) throw std::runtime_error(std::string("open failed: ") + plugin().desc().last_error());
        n_vocab_ = view.n_vocab;
    }
    ~Session() { plugin().desc().close(session_); }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Runs the tokens at `pos`; returns n_tokens rows of logits (all) or one row (last only).
    std::vector<float> step(const std::vector<int32_t>& tokens, uint32_t pos, bool all) {
        std::vector<float> logits((all ? tokens.size() : 1) * n_vocab_);
        const apr_status st = plugin().step(session_, tokens.data(), static_cast<uint32_t>(tokens.size()), pos,
                                            all ? APR_STEP_LOGITS_ALL : 0u, logits.data());
        if (st != APR_OK) throw std::runtime_error(std::string("step failed: ") + plugin().desc().last_error());
        return logits;
    }
    apr_session* get() const { return session_; }

private:
    static const BackendPlugin& plugin() { return cpu_plugin(); }
    apr_session* session_ = nullptr;
    uint32_t n_vocab_ = 0;
};

using apr::test::top2;

struct Tolerance {
    double min_cosine;
    double max_abs_diff;
};

// Running worst figures over compared rows.
struct Agreement {
    double worst_cosine = 1.0;
    double max_abs_diff = 0.0;
    size_t rows = 0, argmax_equal = 0;
};

// Compares one row of ours against one row of the expected logits: cosine (f64 sums), max abs
// difference, and top-1 (equal where the expected top-2 margin >= 0.01, else each argmax
// among the other's top two). Records the figures in `agg`.
inline void compare_row(const float* ours, const float* expected, size_t n, Tolerance tol, Agreement& agg) {
    double dot = 0, n_ours = 0, n_exp = 0, diff = 0;
    bool finite = true;
    for (size_t i = 0; i < n; ++i) {
        finite = finite && std::isfinite(ours[i]);
        dot += double(ours[i]) * expected[i];
        n_ours += double(ours[i]) * ours[i];
        n_exp += double(expected[i]) * expected[i];
        diff = std::max(diff, std::abs(double(ours[i]) - expected[i]));
    }
    REQUIRE(finite);
    const double cosine = dot / std::sqrt(n_ours * n_exp);
    const auto [e1, e2] = top2(expected, n);
    const auto [o1, o2] = top2(ours, n);
    const double margin = double(expected[e1]) - expected[e2];
    CAPTURE(cosine, diff, e1, e2, o1, o2, margin);
    CHECK(cosine >= tol.min_cosine);
    CHECK(diff <= tol.max_abs_diff);
    // Top-1: equal where the expected top-2 margin is >= 0.01, else within the near-tie. Where the
    // two sides differ by `diff` somewhere, a margin below 2 * diff is a near-tie too: on the
    // synthetic models (tiny residual stream, RMSNorm amplifying it) an activation rounding that
    // flips between two correct forwards moves logits by ~1e-2 (oracle README, "Numerics"), and
    // three or more logits can sit that close. Against llama.cpp diff is ~1e-7 and this is the
    // plain 0.01 rule.
    const double tie = std::max(0.01, 2.0 * diff);
    if (margin >= tie) {
        CHECK(o1 == e1);
    } else {
        CHECK(double(expected[e1]) - expected[o1] <= tie);
        CHECK(double(ours[o1]) - ours[e1] <= tie);
    }
    agg.worst_cosine = std::min(agg.worst_cosine, cosine);
    agg.max_abs_diff = std::max(agg.max_abs_diff, diff);
    agg.rows += 1;
    agg.argmax_equal += o1 == e1 ? 1 : 0;
}

inline void print_agreement(const std::string& what, const Agreement& a) {
    std::cout << "[cpu] " << what << ": worst cosine " << std::setprecision(8) << a.worst_cosine << ", max |diff| "
              << std::setprecision(3) << a.max_abs_diff << ", argmax equal " << a.argmax_equal << "/" << a.rows << std::endl;
}

}  // namespace apr::test::cpu
