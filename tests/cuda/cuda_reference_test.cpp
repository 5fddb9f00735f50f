// The CUDA plugin against the core's ReferenceForward on synthetic models (write_synthetic_model):
// every architecture x weight type through a prefill with all logits (tensor-core path), 16
// decode steps fed the reference's argmax (the decode graph), and a rewind continued with a
// short multi-token step (the mat-vec path for a few tokens) and one more decode step. Plus: prefills longer than one
// chunk with RoPE scaling and rope_freqs, odd sizes that are not multiples of 32, the decode
// graph against plain launches, an f16 KV cache, the step contract's errors, 200-token prefills
// whose tiles have partial edges (rows, tokens, reduction steps) for every quantized type, and the
// tensor-core prefill attention against the SIMT one.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <utility>
#include <vector>

#include "cuda/cuda_plugin.hpp"
#include "model/model.hpp"
#include "model/synthetic_model.hpp"
#include "reference/reference_forward.hpp"
#include "reference/test_model_view.hpp"
#include "support/skip.hpp"
#include "support/step_contract.hpp"
#include "support/testdata.hpp"

using apr::ReferenceForward;
using apr::test::CudaPlugin;
using apr::test::CudaSession;
using apr::test::TestModelView;
using apr::test::TinyShape;
using apr::test::Worst;

namespace {

// Compares every row of `ours` and `ref`: finite, cosine >= min_cosine.
void compare(const std::vector<float>& ours, const std::vector<float>& ref, size_t n_vocab, double min_cosine,
             Worst& worst, const std::string& what) {
    REQUIRE(ours.size() == ref.size());
    for (size_t r = 0; r < ours.size() / n_vocab; ++r) {
        const auto d = apr::test::compare_rows(&ours[r * n_vocab], &ref[r * n_vocab], n_vocab);
        CAPTURE(what, r, d.cosine, d.max_abs);
        CHECK(d.finite);
        CHECK(d.cosine >= min_cosine);
        worst.add(d);
    }
}

// Prefill (all logits) + 16 decode steps + a rewind, plugin vs reference.
Worst run_against_reference(const CudaPlugin& plugin, const apr_model_view& view, uint32_t n_ctx, double min_cosine,
                            size_t prompt_length = 20) {
    const size_t V = view.n_vocab;
    ReferenceForward ref(view, n_ctx);
    CudaSession session(plugin, view, n_ctx);
    INFO(session.open_error());
    REQUIRE(session.open_status() == APR_OK);
    Worst worst;

    std::vector<int32_t> prompt(prompt_length);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t(i == 0 ? 1 : (i * 53 + 11) % V);
    std::vector<float> ours(prompt.size() * V), theirs(prompt.size() * V);
    INFO(plugin.last_error());
    REQUIRE(plugin.step(session.get(), prompt.data(), uint32_t(prompt.size()), 0, APR_STEP_LOGITS_ALL, ours.data()) ==
            APR_OK);
    ref.step(prompt.data(), uint32_t(prompt.size()), 0, true, theirs.data());
    compare(ours, theirs, V, min_cosine, worst, "prefill");

    std::vector<float> ours1(V), theirs1(V);
    int32_t next = int32_t(apr::test::argmax(&theirs[(prompt.size() - 1) * V], V));
    uint32_t pos = uint32_t(prompt.size());
    for (int i = 0; i < 16; ++i, ++pos) {
        INFO("decode step " << i);
        REQUIRE(plugin.step(session.get(), &next, 1, pos, 0, ours1.data()) == APR_OK);
        ref.step(&next, 1, pos, false, theirs1.data());
        compare(ours1, theirs1, V, min_cosine, worst, "decode");
        next = int32_t(apr::test::argmax(theirs1.data(), V));
    }

    // Rewind to position 5 and continue with 7 other tokens (mat-vec batches of 4, 2 and 1): the
    // cache from 5 on is forgotten.
    std::vector<int32_t> other(7);
    for (size_t i = 0; i < other.size(); ++i) other[i] = int32_t((63 + 29 * i) % V);
    std::vector<float> ours7(other.size() * V), theirs7(other.size() * V);
    REQUIRE(plugin.step(session.get(), other.data(), uint32_t(other.size()), 5, APR_STEP_LOGITS_ALL, ours7.data()) ==
            APR_OK);
    ref.step(other.data(), uint32_t(other.size()), 5, true, theirs7.data());
    compare(ours7, theirs7, V, min_cosine, worst, "rewind");
    // And one more decode step after the rewind, through the graph again.
    next = int32_t(apr::test::argmax(&theirs7[(other.size() - 1) * V], V));
    const uint32_t after = 5 + uint32_t(other.size());
    REQUIRE(plugin.step(session.get(), &next, 1, after, 0, ours1.data()) == APR_OK);
    ref.step(&next, 1, after, false, theirs1.data());
    compare(ours1, theirs1, V, min_cosine, worst, "decode after rewind");
    return worst;
}

// A synthetic model of `arch` with every matrix stored as `type`, written and loaded back.
std::unique_ptr<apr::Model> synthetic(const std::string& arch, uint32_t type, const std::string& tag,
                                      bool llama3_rope_freqs = false, uint32_t n_ctx = 256) {
    apr::SyntheticModelSpec spec;
    spec.arch = arch;
    spec.n_vocab = 512;
    spec.n_embd = 256;  // K-quant rows need multiples of 256
    spec.n_layer = 2;
    spec.n_head = 4;
    spec.n_head_kv = 2;
    spec.n_ff = 512;
    spec.n_ctx = n_ctx;
    spec.weight_type = type;
    spec.seed = 11;
    spec.llama3_rope_freqs = llama3_rope_freqs;
    const auto path = apr::test::scratch_dir("cuda_" + tag) / "model.gguf";
    apr::write_synthetic_model(path.string(), spec);
    return apr::Model::load(path.string());
}

// Logits of `tokens` decoded one step at a time in a fresh session ([position][vocab]): how the
// tests compare decode settings (graph or plain launches, KV type, fused epilogues) run by run.
std::vector<float> decode_one_at_a_time(const CudaPlugin& plugin, const apr_model_view& view, uint32_t n_ctx,
                                        const std::vector<int32_t>& tokens) {
    CudaSession session(plugin, view, n_ctx);
    INFO(session.open_error());
    REQUIRE(session.open_status() == APR_OK);
    std::vector<float> out(tokens.size() * view.n_vocab, 0.0f);
    for (uint32_t p = 0; p < tokens.size(); ++p)
        REQUIRE(plugin.step(session.get(), &tokens[p], 1, p, 0, &out[p * view.n_vocab]) == APR_OK);
    return out;
}

void check_type(uint32_t type, const char* type_name) {
    CudaPlugin plugin;
    std::string why;
    APR_SKIP_TEST_UNLESS(plugin.device_present(why), why);
    for (const char* arch : {"llama", "qwen2", "qwen3"}) {
        CAPTURE(arch, type_name);
        auto model = synthetic(arch, type, std::string(arch) + "_" + type_name);
        const Worst w = run_against_reference(plugin, model->view(), 256, 0.999);
        std::cout << "[cuda] " << arch << " " << type_name
                  << " vs reference (prefill 20, decode 16, rewind 7 + 1): worst cosine " << std::setprecision(8)
                  << w.cosine << ", max |diff| " << std::setprecision(3) << w.max_abs << std::endl;
    }
}

// Sets an environment variable for the lifetime of this object.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
    ~ScopedEnv() { unsetenv(name_); }

private:
    const char* name_;
};

}  // namespace

TEST_CASE("cuda vs reference: F32", "[cuda]") { check_type(APR_TYPE_F32, "F32"); }
TEST_CASE("cuda vs reference: F16", "[cuda]") { check_type(APR_TYPE_F16, "F16"); }
TEST_CASE("cuda vs reference: BF16", "[cuda]") { check_type(APR_TYPE_BF16, "BF16"); }
TEST_CASE("cuda vs reference: Q8_0", "[cuda]") { check_type(APR_TYPE_Q8_0, "Q8_0"); }
TEST_CASE("cuda vs reference: Q4_0", "[cuda]") { check_type(APR_TYPE_Q4_0, "Q4_0"); }
TEST_CASE("cuda vs reference: Q4_1", "[cuda]") { check_type(APR_TYPE_Q4_1, "Q4_1"); }
TEST_CASE("cuda vs reference: Q5_0", "[cuda]") { check_type(APR_TYPE_Q5_0, "Q5_0"); }
TEST_CASE("cuda vs reference: Q5_1", "[cuda]") { check_type(APR_TYPE_Q5_1, "Q5_1"); }
TEST_CASE("cuda vs reference: Q4_K", "[cuda]") { check_type(APR_TYPE_Q4_K, "Q4_K"); }
TEST_CASE("cuda vs reference: Q5_K", "[cuda]") { check_type(APR_TYPE_Q5_K, "Q5_K"); }
TEST_CASE("cuda vs reference: Q6_K", "[cuda]") { check_type(APR_TYPE_Q6_K, "Q6_K"); }

TEST_CASE("cuda vs reference: prefill over several chunks with Llama 3 rope_freqs and long-context decode", "[cuda]") {
    CudaPlugin plugin;
    std::string why;
    APR_SKIP_TEST_UNLESS(plugin.device_present(why), why);
    const uint32_t n_ctx = 1400, n = 1100;  // more tokens than one chunk (512): three forward passes
    auto model = synthetic("llama", APR_TYPE_Q4_K, "long", true, n_ctx);
    const apr_model_view& view = model->view();
    const size_t V = view.n_vocab;
    ReferenceForward ref(view, n_ctx);
    CudaSession session(plugin, view, n_ctx);
    INFO(session.open_error());
    REQUIRE(session.open_status() == APR_OK);
    std::vector<int32_t> tokens(n);
    for (uint32_t i = 0; i < n; ++i) tokens[i] = int32_t((i * 37 + 5) % V);
    std::vector<float> ours(size_t(n) * V), theirs(ours.size());
    REQUIRE(plugin.step(session.get(), tokens.data(), n, 0, APR_STEP_LOGITS_ALL, ours.data()) == APR_OK);
    ref.step(tokens.data(), n, 0, true, theirs.data());
    Worst worst;
    compare(ours, theirs, V, 0.999, worst, "long prefill");
    // Decode steps deep into the context (attention split over many blocks).
    std::vector<float> one(V), ref_one(V);
    for (uint32_t p = n; p < n + 4; ++p) {
        REQUIRE(plugin.step(session.get(), &tokens[p - n], 1, p, 0, one.data()) == APR_OK);
        ref.step(&tokens[p - n], 1, p, false, ref_one.data());
        compare(one, ref_one, V, 0.999, worst, "long-context decode");
    }
    // Last-token logits only, after a rewind into the middle of the first chunk.
    REQUIRE(plugin.step(session.get(), tokens.data() + 10, 600, 10, 0, one.data()) == APR_OK);
    ref.step(tokens.data() + 10, 600, 10, false, ref_one.data());
    compare(one, ref_one, V, 0.999, worst, "rewound prefill, last logits");
    std::cout << "[cuda] long prefill (1100 tokens in 3 chunks, Q4_K, rope_freqs) + decode at 1100: worst cosine "
              << std::setprecision(8) << worst.cosine << ", max |diff| " << std::setprecision(3) << worst.max_abs
              << std::endl;
}

TEST_CASE("cuda vs reference: 200-token prefill tiles with partial edges, every quantized type", "[cuda]") {
    // 200 tokens (one full and one partial 128-token tile of the pipelined int8 kernel), 500
    // vocabulary rows (a partial 128-row tile of the output product), and for the 32-element
    // formats n_ff 384: ffn_down's rows are 12 chunks, a partial 8-chunk step (Q4_1 and Q5_1 rows
    // are whole 16-byte copies there; the others take the 64 x 64 tiles).
    CudaPlugin plugin;
    std::string why;
    APR_SKIP_TEST_UNLESS(plugin.device_present(why), why);
    const uint32_t types[] = {APR_TYPE_Q4_0, APR_TYPE_Q4_1, APR_TYPE_Q5_0, APR_TYPE_Q5_1, APR_TYPE_Q8_0,
                              APR_TYPE_Q4_K, APR_TYPE_Q5_K, APR_TYPE_Q6_K};
    for (uint32_t type : types) {
        const bool k_quant = type == APR_TYPE_Q4_K || type == APR_TYPE_Q5_K || type == APR_TYPE_Q6_K;
        CAPTURE(type);
        apr::SyntheticModelSpec spec;
        spec.arch = "llama";
        spec.n_vocab = 500;
        spec.n_embd = 256;
        spec.n_layer = 2;
        spec.n_head = 4;
        spec.n_head_kv = 2;
        spec.n_ff = k_quant ? 768 : 384;
        spec.n_ctx = 256;
        spec.weight_type = type;
        spec.seed = 23;
        const auto path = apr::test::scratch_dir("cuda_edges_" + std::to_string(type)) / "model.gguf";
        apr::write_synthetic_model(path.string(), spec);
        auto model = apr::Model::load(path.string());
        const Worst w = run_against_reference(plugin, model->view(), 256, 0.999, 200);
        std::cout << "[cuda] prefill 200 with partial tiles, type " << type << ": worst cosine "
                  << std::setprecision(8) << w.cosine << ", max |diff| " << std::setprecision(3) << w.max_abs
                  << std::endl;
    }
}

TEST_CASE("cuda vs reference: sizes that are not multiples of 32 with RoPE frequency scaling", "[cuda]") {
    CudaPlugin plugin;
    std::string why;
    APR_SKIP_TEST_UNLESS(plugin.device_present(why), why);
    for (uint32_t type : {uint32_t(APR_TYPE_F32), uint32_t(APR_TYPE_F16), uint32_t(APR_TYPE_BF16)}) {
        for (uint32_t arch : {uint32_t(APR_ARCH_LLAMA), uint32_t(APR_ARCH_QWEN3)}) {
            CAPTURE(type, arch);
            TinyShape shape;  // n_embd 32, n_ff 48, head_dim 8
            shape.arch = arch;
            shape.rope_type = arch == APR_ARCH_LLAMA ? APR_ROPE_NORM : APR_ROPE_NEOX;
            shape.rope_freq_scale = 0.25f;
            shape.n_ff = 44;
            TestModelView model(shape);
            model.add_random_weights(5 + type, type);
            const Worst w = run_against_reference(plugin, model.view(), 64, 0.999, 12);
            std::cout << "[cuda] odd sizes (n_embd 32, n_ff 44, head_dim 8), type " << type << ", arch " << arch
                      << ": worst cosine " << std::setprecision(8) << w.cosine << std::endl;
        }
    }
}

TEST_CASE("cuda: decode graph replays match plain launches and an f16 KV cache stays close", "[cuda]") {
    CudaPlugin plugin;
    std::string why;
    APR_SKIP_TEST_UNLESS(plugin.device_present(why), why);
    auto model = synthetic("qwen2", APR_TYPE_Q5_K, "graph");
    const apr_model_view& view = model->view();
    const size_t V = view.n_vocab;
    const uint32_t n_ctx = 128;

    const std::vector<int32_t> tokens = {1, 5, 9, 300, 42, 7, 8, 100};
    auto run = [&](std::vector<float>& out) { out = decode_one_at_a_time(plugin, view, n_ctx, tokens); };
    std::vector<float> graph, plain, f16;
    run(graph);
    {
        ScopedEnv no_graph("APR_CUDA_GRAPH", "0");
        run(plain);
    }
    {
        ScopedEnv kv("APR_CUDA_KV", "f16");
        run(f16);
    }
    CHECK(graph == plain);  // same kernels, same order: bit-identical
    Worst worst;
    // 0.999, not tighter: the f16 cache moves activations by ~1e-3 relative, enough to flip some
    // Q8_K roundings of the matrix-product inputs, which the 2-layer model then amplifies.
    compare(f16, graph, V, 0.999, worst, "f16 KV cache vs f32");
    std::cout << "[cuda] f16 KV cache vs f32: worst cosine " << std::setprecision(8) << worst.cosine << std::endl;
}

// The decode epilogues that prepare the next product's input (RMSNorm deferred to the consumer,
// SwiGLU fused into gate/up; segmented types only) against the separate preparation kernels
// (APR_CUDA_NO_NORM_FUSION=1): the same math up to the rounding of the Q8 scales, so close but
// not bit-identical; and the fused path deterministic (graph replays = plain launches).
TEST_CASE("cuda: fused decode epilogues match the separate preparation kernels", "[cuda]") {
    CudaPlugin plugin;
    std::string why;
    APR_SKIP_TEST_UNLESS(plugin.device_present(why), why);
    for (const auto& [type, name] : {std::pair{APR_TYPE_Q4_0, "Q4_0"}, std::pair{APR_TYPE_Q4_K, "Q4_K"}}) {
        CAPTURE(name);
        auto model = synthetic("llama", type, std::string("epilogues_") + name);
        const apr_model_view& view = model->view();
        const size_t V = view.n_vocab;
        const std::vector<int32_t> tokens = {1, 5, 9, 300, 42, 7, 8, 100, 3, 77};
        auto run = [&](std::vector<float>& out) { out = decode_one_at_a_time(plugin, view, 128, tokens); };
        std::vector<float> fused, fused_plain, separate;
        run(fused);
        {
            ScopedEnv no_graph("APR_CUDA_GRAPH", "0");
            run(fused_plain);
        }
        {
            ScopedEnv no_fusion("APR_CUDA_NO_NORM_FUSION", "1");
            run(separate);
        }
        CHECK(fused == fused_plain);  // fixed summation orders, no float atomics
        CHECK(fused != separate);     // the fused path did run
        Worst worst;
        compare(fused, separate, V, 0.999, worst, "fused epilogues vs separate kernels");
        std::cout << "[cuda] " << name << " fused decode epilogues vs separate kernels: worst cosine "
                  << std::setprecision(8) << worst.cosine << ", max |diff| " << std::setprecision(3) << worst.max_abs
                  << std::endl;
    }
}

// The tensor-core prefill attention (attention_prefill_mma.cu) against the SIMT prefill kernel
// (APR_CUDA_TC_ATTENTION=0) and the reference: a 300-token prompt after 45 earlier tokens, so the
// positions of the 5 query tiles (the last one partial) start at 45 and their keys span several
// tiles; head_dim 64 with two heads per KV head (GQA) and head_dim 128, f32 and f16 caches.
TEST_CASE("cuda: tensor-core prefill attention matches the SIMT kernel and the reference after earlier tokens",
          "[cuda]") {
    CudaPlugin plugin;
    std::string why;
    APR_SKIP_TEST_UNLESS(plugin.device_present(why), why);
    const uint32_t n_ctx = 400, first = 45, n = 300;
    for (const auto& [n_head, n_head_kv] : {std::pair{4u, 2u}, std::pair{2u, 2u}}) {
        apr::SyntheticModelSpec spec;
        spec.arch = "llama";
        spec.n_vocab = 512;
        spec.n_embd = 256;
        spec.n_layer = 2;
        spec.n_head = n_head;
        spec.n_head_kv = n_head_kv;
        spec.n_ff = 512;
        spec.n_ctx = n_ctx;
        spec.weight_type = APR_TYPE_F32;  // no rounding of the products' inputs: the attention's shows
        spec.seed = 31;
        const auto path = apr::test::scratch_dir("cuda_tc_attention_" + std::to_string(n_head)) / "model.gguf";
        apr::write_synthetic_model(path.string(), spec);
        auto model = apr::Model::load(path.string());
        const apr_model_view& view = model->view();
        const size_t V = view.n_vocab;
        std::vector<int32_t> tokens(first + n);
        for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 41 + 7) % V);
        // The logits of the n tokens after the first ones, each step a prefill.
        auto prefill_after_first = [&]() {
            CudaSession session(plugin, view, n_ctx);
            INFO(session.open_error());
            REQUIRE(session.open_status() == APR_OK);
            std::vector<float> last(V), out(size_t(n) * V);
            REQUIRE(plugin.step(session.get(), tokens.data(), first, 0, 0, last.data()) == APR_OK);
            REQUIRE(plugin.step(session.get(), tokens.data() + first, n, first, APR_STEP_LOGITS_ALL, out.data()) ==
                    APR_OK);
            return out;
        };
        ReferenceForward ref(view, n_ctx);
        std::vector<float> ref_last(V), theirs(size_t(n) * V);
        ref.step(tokens.data(), first, 0, false, ref_last.data());
        ref.step(tokens.data() + first, n, first, true, theirs.data());
        for (const char* kv : {"f32", "f16"}) {
            CAPTURE(n_head, n_head_kv, kv);
            ScopedEnv kv_type("APR_CUDA_KV", kv);
            const std::vector<float> tc = prefill_after_first();
            std::vector<float> simt;
            {
                ScopedEnv simt_attention("APR_CUDA_TC_ATTENTION", "0");
                simt = prefill_after_first();
            }
            CHECK(tc != simt);  // the tensor-core kernel did run (f16 rounding: not bit-identical)
            Worst vs_simt, vs_ref;
            // f32 weights keep the logits close to both (H200: 1 - cosine about 2e-7 either way).
            compare(tc, simt, V, 0.99999, vs_simt, "tensor cores vs SIMT");
            compare(tc, theirs, V, 0.99999, vs_ref, "tensor cores vs reference");
            std::cout << "[cuda] prefill attention on tensor cores, head_dim " << 256 / n_head << ", " << kv
                      << " cache, 300 tokens after 45: worst cosine vs SIMT " << std::setprecision(8)
                      << vs_simt.cosine << ", vs reference " << vs_ref.cosine << ", max |diff| vs reference "
                      << std::setprecision(3) << vs_ref.max_abs << std::endl;
        }
    }
}

TEST_CASE("cuda: broken step calls fail with a status and a reason", "[cuda]") {
    CudaPlugin plugin;
    std::string why;
    APR_SKIP_TEST_UNLESS(plugin.device_present(why), why);
    TestModelView model(TinyShape{});
    model.add_random_weights(3, APR_TYPE_F16);
    CudaSession s(plugin, model.view(), 16);
    INFO(s.open_error());
    REQUIRE(s.open_status() == APR_OK);
    apr::test::check_bad_step_calls(plugin, s.get(), model.view().n_vocab);
    CHECK(plugin.last_error().empty());
}
