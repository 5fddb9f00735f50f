// Throughput of the CUDA plugin on a 7B-shaped llama (n_embd 4096, 32 layers, 32 heads, n_ff
// 11008, n_vocab 32000): a 512-token prefill and 128 decode steps, timed through the ABI
// (logits copied back every step). The weights are a few seeded random rows, quantized by the
// core's codec and repeated, so the model builds in seconds; speed does not depend on values.
// Runs only when APR_CUDA_BENCH=1 (it needs a large GPU and prints timings for reports); it
// still checks that every logit is finite. APR_CUDA_BENCH_LAYERS and APR_CUDA_BENCH_DECODE
// shrink it (fewer layers, fewer decode steps) for runs under a profiler.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iomanip>
#include <iostream>
#include <random>
#include <vector>

#include "cuda/cuda_plugin.hpp"
#include "model/tensor_codec.hpp"
#include "support/skip.hpp"

using apr::test::CudaPlugin;
using apr::test::CudaSession;

namespace {

// An apr_model_view over tensors built in memory from a handful of distinct rows.
class TiledModel {
public:
    TiledModel(uint32_t type, uint32_t n_embd, uint32_t n_layer, uint32_t n_head, uint32_t n_head_kv, uint32_t n_ff,
               uint32_t n_vocab) {
        const uint32_t hd = n_embd / n_head, q = n_head * hd, kv = n_head_kv * hd;
        matrix("token_embd.weight", type, n_embd, n_vocab);
        vector("output_norm.weight", n_embd);
        matrix("output.weight", type, n_embd, n_vocab);
        for (uint32_t l = 0; l < n_layer; ++l) {
            const std::string p = "blk." + std::to_string(l) + ".";
            vector(p + "attn_norm.weight", n_embd);
            vector(p + "ffn_norm.weight", n_embd);
            matrix(p + "attn_q.weight", type, n_embd, q);
            matrix(p + "attn_k.weight", type, n_embd, kv);
            matrix(p + "attn_v.weight", type, n_embd, kv);
            matrix(p + "attn_output.weight", type, q, n_embd);
            matrix(p + "ffn_gate.weight", type, n_embd, n_ff);
            matrix(p + "ffn_up.weight", type, n_embd, n_ff);
            matrix(p + "ffn_down.weight", type, n_ff, n_embd);
        }
        view_.struct_size = sizeof view_;
        view_.arch = APR_ARCH_LLAMA;
        view_.arch_name = "llama";
        view_.model_name = "7b-shaped bench";
        view_.n_vocab = n_vocab;
        view_.n_ctx_train = 4096;
        view_.n_embd = n_embd;
        view_.n_layer = n_layer;
        view_.n_head = n_head;
        view_.n_head_kv = n_head_kv;
        view_.head_dim = hd;
        view_.n_ff = n_ff;
        view_.n_rot = hd;
        view_.rope_type = APR_ROPE_NORM;
        view_.rope_freq_base = 10000.0f;
        view_.rope_freq_scale = 1.0f;
        view_.rms_norm_eps = 1e-5f;
        view_.bos_token_id = 1;
        view_.eos_token_id = 2;
        view_.n_tensors = uint32_t(table_.size());
        view_.tensors = table_.data();
    }
    const apr_model_view& view() const { return view_; }
    size_t bytes() const { return bytes_; }

private:
    void matrix(const std::string& name, uint32_t type, uint64_t cols, uint64_t rows) {
        constexpr int kDistinctRows = 8;
        const size_t row_bytes = apr::row_size(type, int64_t(cols));
        std::vector<uint8_t> pattern(row_bytes * kDistinctRows);
        std::normal_distribution<float> dist(0.0f, 0.02f);
        std::vector<float> values(cols);
        for (int r = 0; r < kDistinctRows; ++r) {
            for (auto& v : values) v = dist(rng_);
            apr::quantize_row(type, values.data(), pattern.data() + r * row_bytes, int64_t(cols));
        }
        std::vector<uint8_t> data(row_bytes * rows);
        for (uint64_t r = 0; r < rows; ++r)
            std::copy_n(pattern.data() + (r % kDistinctRows) * row_bytes, row_bytes, data.data() + r * row_bytes);
        add(name, type, cols, rows, std::move(data));
    }
    void vector(const std::string& name, uint64_t n) {
        std::vector<float> ones(n, 1.0f);
        std::vector<uint8_t> data(n * 4);
        std::memcpy(data.data(), ones.data(), data.size());
        add(name, APR_TYPE_F32, n, 1, std::move(data));
    }
    void add(const std::string& name, uint32_t type, uint64_t cols, uint64_t rows, std::vector<uint8_t> data) {
        names_.push_back(name);
        storage_.push_back(std::move(data));
        apr_tensor_view t{};
        t.name = names_.back().c_str();
        t.type = type;
        t.n_dims = rows == 1 ? 1 : 2;
        t.ne[0] = cols;
        t.ne[1] = rows;
        t.ne[2] = t.ne[3] = 1;
        t.data = storage_.back().data();
        t.n_bytes = storage_.back().size();
        bytes_ += t.n_bytes;
        table_.push_back(t);
    }

    std::mt19937 rng_{1234};
    std::deque<std::string> names_;
    std::deque<std::vector<uint8_t>> storage_;
    std::vector<apr_tensor_view> table_;
    apr_model_view view_{};
    size_t bytes_ = 0;
};

void bench(uint32_t type, const char* type_name) {
    const char* enabled = std::getenv("APR_CUDA_BENCH");
    APR_SKIP_TEST_UNLESS(enabled && std::string(enabled) == "1", "set APR_CUDA_BENCH=1 to run the 7B benchmark");
    CudaPlugin plugin;
    std::string why;
    APR_SKIP_TEST_UNLESS(plugin.device_present(why), why);

    auto env_count = [](const char* name, uint32_t fallback) {
        const char* v = std::getenv(name);
        return v && *v ? uint32_t(std::stoul(v)) : fallback;
    };
    const uint32_t n_layer = env_count("APR_CUDA_BENCH_LAYERS", 32);
    TiledModel model(type, 4096, n_layer, 32, 32, 11008, 32000);
    const apr_model_view& view = model.view();
    const size_t V = view.n_vocab;
    const uint32_t n_prompt = 512, n_decode = env_count("APR_CUDA_BENCH_DECODE", 128);
    using clock = std::chrono::steady_clock;
    const auto t_open = clock::now();
    CudaSession session(plugin, view, 4096);
    INFO(session.open_error());
    REQUIRE(session.open_status() == APR_OK);
    const double open_s = std::chrono::duration<double>(clock::now() - t_open).count();

    std::vector<int32_t> prompt(n_prompt);
    for (uint32_t i = 0; i < n_prompt; ++i) prompt[i] = int32_t((i * 7919 + 1) % V);
    std::vector<float> logits(V);
    // Warm-up (first launches, graph capture), then timed runs from position 0 again.
    REQUIRE(plugin.step(session.get(), prompt.data(), n_prompt, 0, 0, logits.data()) == APR_OK);
    int32_t tok = 42;
    REQUIRE(plugin.step(session.get(), &tok, 1, n_prompt, 0, logits.data()) == APR_OK);

    const auto t0 = clock::now();
    REQUIRE(plugin.step(session.get(), prompt.data(), n_prompt, 0, 0, logits.data()) == APR_OK);
    const double prefill_s = std::chrono::duration<double>(clock::now() - t0).count();
    for (float v : logits) REQUIRE(std::isfinite(v));

    const auto t1 = clock::now();
    for (uint32_t i = 0; i < n_decode; ++i) {
        REQUIRE(plugin.step(session.get(), &tok, 1, n_prompt + i, 0, logits.data()) == APR_OK);
        tok = int32_t(apr::test::argmax(logits.data(), V));
    }
    const double decode_s = std::chrono::duration<double>(clock::now() - t1).count();
    for (float v : logits) REQUIRE(std::isfinite(v));
    std::cout << "[cuda] bench 7B-shaped llama (" << n_layer << " layers) " << type_name << " (" << std::fixed << std::setprecision(2)
              << double(model.bytes()) / 1e9 << " GB of weights, upload+setup " << open_s << " s): prefill "
              << n_prompt << " tokens " << std::setprecision(1) << n_prompt / prefill_s << " tok/s, decode "
              << n_decode << " steps at 512..640 " << n_decode / decode_s << " tok/s (" << std::setprecision(3)
              << 1e3 * decode_s / n_decode << " ms/token)" << std::defaultfloat << std::endl;
}

}  // namespace

TEST_CASE("cuda bench: 7B-shaped Q4_0", "[cuda][bench]") { bench(APR_TYPE_Q4_0, "Q4_0"); }
TEST_CASE("cuda bench: 7B-shaped Q4_K", "[cuda][bench]") { bench(APR_TYPE_Q4_K, "Q4_K"); }
TEST_CASE("cuda bench: 7B-shaped Q8_0", "[cuda][bench]") { bench(APR_TYPE_Q8_0, "Q8_0"); }
TEST_CASE("cuda bench: 7B-shaped F16", "[cuda][bench]") { bench(APR_TYPE_F16, "F16"); }
