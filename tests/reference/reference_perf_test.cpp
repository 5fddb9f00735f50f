// How long the reference forward takes on real model shapes: the parity gate's work (a prefill
// of 8 tokens with all logits, then 3 decode steps) on a 1B-shaped and a 7B-shaped model with
// seeded random Q8_0 / Q4_0 weights built in memory. Hidden tests (tag [.]): they time, they
// do not judge; run them by name, e.g. apr_tests "[reference-perf]".
#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <cmath>
#include <iostream>
#include <vector>

#include "reference/reference_forward.hpp"
#include "reference/test_model_view.hpp"

namespace {

// Uniform values in [-0.05, 0.05) from a xorshift generator: cheap enough for billions of weights.
class FastUniform {
public:
    explicit FastUniform(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull | 1) {}
    std::vector<float> values(size_t n, float center) {
        std::vector<float> v(n);
        for (auto& x : v) {
            state_ ^= state_ << 13;
            state_ ^= state_ >> 7;
            state_ ^= state_ << 17;
            x = center + (float(state_ >> 40) / float(1 << 24) - 0.5f) * 0.1f;
        }
        return v;
    }

private:
    uint64_t state_;
};

void add_uniform_weights(apr::test::TestModelView& model, uint32_t type) {
    const auto& s = model.shape();
    FastUniform rng(s.n_embd);
    const uint64_t q_dim = uint64_t{s.n_head} * s.head_dim, kv_dim = uint64_t{s.n_head_kv} * s.head_dim;
    auto matrix = [&](const std::string& name, uint64_t cols, uint64_t rows) {
        model.add(name, rng.values(cols * rows, 0.0f), cols, rows, type);
    };
    auto norm = [&](const std::string& name, uint64_t n) { model.add(name, rng.values(n, 1.0f), n); };
    matrix("token_embd.weight", s.n_embd, s.n_vocab);
    norm("output_norm.weight", s.n_embd);
    matrix("output.weight", s.n_embd, s.n_vocab);
    for (uint32_t l = 0; l < s.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        norm(p + "attn_norm.weight", s.n_embd);
        matrix(p + "attn_q.weight", s.n_embd, q_dim);
        matrix(p + "attn_k.weight", s.n_embd, kv_dim);
        matrix(p + "attn_v.weight", s.n_embd, kv_dim);
        matrix(p + "attn_output.weight", q_dim, s.n_embd);
        norm(p + "ffn_norm.weight", s.n_embd);
        matrix(p + "ffn_gate.weight", s.n_embd, s.n_ff);
        matrix(p + "ffn_up.weight", s.n_embd, s.n_ff);
        matrix(p + "ffn_down.weight", s.n_ff, s.n_embd);
    }
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void time_gate_workload(const char* label, const apr::test::TinyShape& shape, uint32_t type) {
    auto start = std::chrono::steady_clock::now();
    apr::test::TestModelView model(shape);
    add_uniform_weights(model, type);
    const double build_s = seconds_since(start);

    apr::ReferenceForward ref(model.view(), 64);
    const size_t nv = ref.n_vocab();
    std::vector<int32_t> tokens = {1, 17, 42, 99, 300, 512, 7, 1999};
    std::vector<float> logits(tokens.size() * nv);
    // CPU time of all threads as well as wall time: on a shared machine the wall time also
    // counts other processes' turns.
    const std::clock_t cpu_start = std::clock();
    start = std::chrono::steady_clock::now();
    ref.step(tokens.data(), 8, 0, true, logits.data());
    const double prefill_s = seconds_since(start);

    double decode_s = 0;
    const float* last = &logits[7 * nv];
    std::vector<float> step_logits(nv);
    for (uint32_t i = 0; i < 3; ++i) {
        const int32_t next = static_cast<int32_t>(std::max_element(last, last + nv) - last);
        start = std::chrono::steady_clock::now();
        ref.step(&next, 1, 8 + i, false, step_logits.data());
        decode_s += seconds_since(start);
        last = step_logits.data();
        for (float x : step_logits) REQUIRE(std::isfinite(x));
    }
    std::cout << "[reference-perf] " << label << " (" << model.view().n_tensors << " tensors, built in " << build_s
              << " s): prefill 8 tokens (all logits) " << prefill_s << " s, 3 decode steps " << decode_s
              << " s, total " << prefill_s + decode_s << " s on " << ref.n_threads() << " threads ("
              << double(std::clock() - cpu_start) / CLOCKS_PER_SEC << " CPU s)" << std::endl;
}

apr::test::TinyShape tinyllama_1b() {  // TinyLlama 1.1B
    apr::test::TinyShape s;
    s.n_vocab = 32000;
    s.n_embd = 2048;
    s.n_layer = 22;
    s.n_head = 32;
    s.n_head_kv = 4;
    s.head_dim = 64;
    s.n_ff = 5632;
    return s;
}

apr::test::TinyShape llama2_7b() {  // Llama 2 7B
    apr::test::TinyShape s;
    s.n_vocab = 32000;
    s.n_embd = 4096;
    s.n_layer = 32;
    s.n_head = 32;
    s.n_head_kv = 32;
    s.head_dim = 128;
    s.n_ff = 11008;
    return s;
}

}  // namespace

TEST_CASE("reference perf: 1B-shaped Q8_0 model: prefill 8 + 3 decodes", "[.][reference-perf]") {
    time_gate_workload("TinyLlama-1.1B-shaped Q8_0", tinyllama_1b(), APR_TYPE_Q8_0);
}

TEST_CASE("reference perf: 1B-shaped Q4_K model: prefill 8 + 3 decodes", "[.][reference-perf]") {
    time_gate_workload("TinyLlama-1.1B-shaped Q4_K", tinyllama_1b(), APR_TYPE_Q4_K);
}

TEST_CASE("reference perf: 7B-shaped Q4_0 model: prefill 8 + 3 decodes", "[.][reference-perf-7b]") {
    time_gate_workload("Llama-2-7B-shaped Q4_0", llama2_7b(), APR_TYPE_Q4_0);
}
