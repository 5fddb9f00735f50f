// Throughput of the Vulkan plugin on a ~1B-parameter llama-shaped model (hidden test: run with
// `apr_tests "[.vulkan-bench]"`; weight bytes are a few quantized random rows repeated, which is
// all a speed measurement needs). Prints prefill and decode rates per weight type.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iomanip>
#include <iostream>
#include <random>
#include <vector>

#include "model/tensor_codec.hpp"
#include "support/skip.hpp"
#include "vulkan/vulkan_plugin.hpp"

namespace {

struct BenchModel {
    std::deque<std::string> names;
    std::deque<std::vector<uint8_t>> bytes;
    std::vector<apr_tensor_view> table;
    apr_model_view view{};
    uint64_t weight_bytes = 0;

    void add(const std::string& name, uint32_t type, uint64_t cols, uint64_t rows, float mean, float sd) {
        std::mt19937 rng(uint32_t(table.size()) + 1);
        std::normal_distribution<float> dist(mean, sd);
        const size_t row_bytes = apr::row_size(type, int64_t(cols));
        const uint64_t pattern_rows = std::min<uint64_t>(rows, 16);
        std::vector<uint8_t> b(row_bytes * rows);
        std::vector<float> values(cols);
        for (uint64_t r = 0; r < pattern_rows; ++r) {
            for (auto& v : values) v = dist(rng);
            apr::quantize_row(type, values.data(), b.data() + r * row_bytes, int64_t(cols));
        }
        for (uint64_t r = pattern_rows; r < rows; ++r)
            std::memcpy(b.data() + r * row_bytes, b.data() + (r % pattern_rows) * row_bytes, row_bytes);
        names.push_back(name);
        bytes.push_back(std::move(b));
        apr_tensor_view t{};
        t.name = names.back().c_str();
        t.type = type;
        t.n_dims = rows == 1 ? 1 : 2;
        t.ne[0] = cols;
        t.ne[1] = rows;
        t.ne[2] = t.ne[3] = 1;
        t.data = bytes.back().data();
        t.n_bytes = bytes.back().size();
        table.push_back(t);
        weight_bytes += t.n_bytes;
    }
};

void build(BenchModel& m, uint32_t type) {
    const uint32_t E = 2048, L = 16, H = 32, HKV = 8, D = 64, F = 5632, V = 32000;
    m.add("token_embd.weight", type, E, V, 0, 0.02f);
    m.add("output_norm.weight", APR_TYPE_F32, E, 1, 1, 0.1f);
    m.add("output.weight", type, E, V, 0, 0.02f);
    for (uint32_t l = 0; l < L; ++l) {
        std::string p = "blk." + std::to_string(l) + ".";
        m.add(p + "attn_norm.weight", APR_TYPE_F32, E, 1, 1, 0.1f);
        m.add(p + "ffn_norm.weight", APR_TYPE_F32, E, 1, 1, 0.1f);
        m.add(p + "attn_q.weight", type, E, H * D, 0, 0.02f);
        m.add(p + "attn_k.weight", type, E, HKV * D, 0, 0.02f);
        m.add(p + "attn_v.weight", type, E, HKV * D, 0, 0.02f);
        m.add(p + "attn_output.weight", type, H * D, E, 0, 0.02f);
        m.add(p + "ffn_gate.weight", type, E, F, 0, 0.02f);
        m.add(p + "ffn_up.weight", type, E, F, 0, 0.02f);
        m.add(p + "ffn_down.weight", type, F, E, 0, 0.02f);
    }
    apr_model_view& v = m.view;
    v.struct_size = sizeof v;
    v.arch = APR_ARCH_LLAMA;
    v.arch_name = "llama";
    v.model_name = "bench-1b";
    v.n_vocab = V;
    v.n_ctx_train = 4096;
    v.n_embd = E;
    v.n_layer = L;
    v.n_head = H;
    v.n_head_kv = HKV;
    v.head_dim = D;
    v.n_ff = F;
    v.n_rot = D;
    v.rope_type = APR_ROPE_NORM;
    v.rope_freq_base = 10000;
    v.rope_freq_scale = 1;
    v.rms_norm_eps = 1e-5f;
    v.n_tensors = uint32_t(m.table.size());
    v.tensors = m.table.data();
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST_CASE("vulkan throughput on a 1B llama shape", "[.vulkan-bench]") {
    apr::test::VulkanPlugin plugin;
    std::string why;
    apr_device_info info{};
    APR_SKIP_TEST_UNLESS(plugin.device_present(why, &info), why);
    std::cout << "[vulkan-bench] device: " << info.description << " (" << info.driver << ")" << std::endl;
    const char* only = std::getenv("APR_BENCH_TYPES");
    const std::string types = only ? only : "F16,Q8_0,Q4_0,Q4_K,Q6_K";
    const uint32_t n_prefill = 512, n_decode = 64, n_ctx = 1024;
    for (auto [type, name] : std::vector<std::pair<uint32_t, std::string>>{{APR_TYPE_F16, "F16"},
                                                                             {APR_TYPE_BF16, "BF16"},
                                                                             {APR_TYPE_Q8_0, "Q8_0"},
                                                                             {APR_TYPE_Q4_0, "Q4_0"},
                                                                             {APR_TYPE_Q4_1, "Q4_1"},
                                                                             {APR_TYPE_Q5_0, "Q5_0"},
                                                                             {APR_TYPE_Q5_1, "Q5_1"},
                                                                             {APR_TYPE_Q4_K, "Q4_K"},
                                                                             {APR_TYPE_Q5_K, "Q5_K"},
                                                                             {APR_TYPE_Q6_K, "Q6_K"}}) {
        if (("," + types + ",").find("," + name + ",") == std::string::npos) continue;
        BenchModel m;
        build(m, type);
        auto t_open = std::chrono::steady_clock::now();
        apr::test::VulkanSession session(plugin, m.view, n_ctx);
        INFO(session.open_error());
        REQUIRE(session.open_status() == APR_OK);
        double open_s = seconds_since(t_open);
        std::vector<int32_t> tokens(n_prefill);
        for (uint32_t i = 0; i < n_prefill; ++i) tokens[i] = int32_t((i * 7919) % m.view.n_vocab);
        std::vector<float> logits(m.view.n_vocab);
        REQUIRE(plugin.step(session.get(), tokens.data(), 16, 0, 0, logits.data()) == APR_OK);  // warm-up
        int32_t next = 5;
        auto t0 = std::chrono::steady_clock::now();
        for (uint32_t i = 0; i < n_decode; ++i)
            REQUIRE(plugin.step(session.get(), &next, 1, 16 + i, 0, logits.data()) == APR_OK);
        double short_decode_s = seconds_since(t0);
        t0 = std::chrono::steady_clock::now();
        REQUIRE(plugin.step(session.get(), tokens.data(), n_prefill, 0, 0, logits.data()) == APR_OK);
        double prefill_s = seconds_since(t0);
        t0 = std::chrono::steady_clock::now();
        for (uint32_t i = 0; i < n_decode; ++i)
            REQUIRE(plugin.step(session.get(), &next, 1, n_prefill + i, 0, logits.data()) == APR_OK);
        double decode_s = seconds_since(t0);
        double per_token_ms = 1e3 * decode_s / n_decode;
        std::cout << "[vulkan-bench] " << std::setw(5) << name << ": weights " << std::fixed << std::setprecision(2)
                  << m.weight_bytes / 1e9 << " GB, open " << open_s << " s, prefill " << n_prefill << " tok "
                  << std::setprecision(1) << n_prefill / prefill_s << " tok/s, decode " << n_decode / decode_s
                  << " tok/s at 512 (" << n_decode / short_decode_s << " tok/s at 16) (" << std::setprecision(3) << per_token_ms << " ms/tok, " << std::setprecision(0)
                  << m.weight_bytes / (per_token_ms * 1e-3) / 1e9 << " GB/s of weights)" << std::defaultfloat
                  << std::endl;
    }
}
