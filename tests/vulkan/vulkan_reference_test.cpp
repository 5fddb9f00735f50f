// The Vulkan plugin against the core's ReferenceForward on seeded random models built in
// memory: every architecture x weight type, a prefill with all logits, 16 decode steps, and a
// rewind; plus long prefills (several submissions), RoPE scaling, and the error contract.
#include <catch2/catch.hpp>

#include <cstring>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <vector>

#include "model/model.hpp"
#include "model/synthetic_model.hpp"
#include "reference/reference_forward.hpp"
#include "reference/test_model_view.hpp"
#include "support/skip.hpp"
#include "support/step_contract.hpp"
#include "support/testdata.hpp"
#include "vulkan/vulkan_plugin.hpp"

using apr::ReferenceForward;
using apr::test::TestModelView;
using apr::test::TinyShape;
using apr::test::VulkanPlugin;
using apr::test::VulkanSession;

namespace {

// Small enough for lavapipe, wide enough for K-quant blocks (256) in every matrix.
TinyShape tiny_shape(uint32_t arch) {
    TinyShape s;
    s.arch = arch;
    s.rope_type = arch == APR_ARCH_LLAMA ? APR_ROPE_NORM : APR_ROPE_NEOX;
    s.n_vocab = 97;  // not a multiple of any shader tile: partial tiles get exercised
    s.n_embd = 256;
    s.n_layer = 2;
    s.n_head = 4;
    s.n_head_kv = 2;
    s.head_dim = 64;
    s.n_ff = 256;
    return s;
}

const char* arch_name(uint32_t arch) { return arch == APR_ARCH_QWEN2 ? "qwen2" : arch == APR_ARCH_QWEN3 ? "qwen3" : "llama"; }

struct Worst {
    double cosine = 1.0;
    double max_abs = 0.0;
    void add(const apr::test::RowDiff& d) {
        cosine = std::min(cosine, d.cosine);
        max_abs = std::max(max_abs, d.max_abs);
    }
};

size_t argmax(const float* row, size_t n) { return size_t(std::max_element(row, row + n) - row); }

// Compares `rows` logit rows of the plugin and the reference; every row must be finite with
// cosine >= min_cosine.
void compare(const std::vector<float>& ours, const std::vector<float>& ref, size_t n_vocab, double min_cosine,
             Worst& worst, const std::string& what) {
    REQUIRE(ours.size() == ref.size());
    for (size_t r = 0; r < ours.size() / n_vocab; ++r) {
        auto d = apr::test::compare_rows(&ours[r * n_vocab], &ref[r * n_vocab], n_vocab);
        CAPTURE(what, r, d.cosine, d.max_abs);
        CHECK(d.finite);
        CHECK(d.cosine >= min_cosine);
        worst.add(d);
    }
}

// Prefill + 16 decode steps (fed the reference's argmax) + a rewind, plugin vs reference.
Worst run_against_reference(const VulkanPlugin& plugin, const apr_model_view& view, uint32_t n_ctx, double min_cosine) {
    const size_t V = view.n_vocab;
    ReferenceForward ref(view, n_ctx, 2);
    VulkanSession session(plugin, view, n_ctx);
    INFO(session.open_error());
    REQUIRE(session.open_status() == APR_OK);
    Worst worst;

    std::vector<int32_t> prompt = {1, 17, 42, 9, 30, 51, 7};
    std::vector<float> ours(prompt.size() * V), theirs(prompt.size() * V);
    REQUIRE(plugin.step(session.get(), prompt.data(), uint32_t(prompt.size()), 0, APR_STEP_LOGITS_ALL, ours.data()) ==
            APR_OK);
    ref.step(prompt.data(), uint32_t(prompt.size()), 0, true, theirs.data());
    compare(ours, theirs, V, min_cosine, worst, "prefill");

    std::vector<float> ours1(V), theirs1(V);
    int32_t next = int32_t(argmax(&theirs[(prompt.size() - 1) * V], V));
    uint32_t pos = uint32_t(prompt.size());
    for (int i = 0; i < 16; ++i, ++pos) {
        INFO("decode step " << i);
        REQUIRE(plugin.step(session.get(), &next, 1, pos, 0, ours1.data()) == APR_OK);
        ref.step(&next, 1, pos, false, theirs1.data());
        compare(ours1, theirs1, V, min_cosine, worst, "decode");
        next = int32_t(argmax(theirs1.data(), V));
    }

    // Rewind to position 4 and continue with other tokens: the cache from 4 on is forgotten.
    std::vector<int32_t> other = {63, 2, int32_t(V) - 1};
    std::vector<float> ours3(other.size() * V), theirs3(other.size() * V);
    REQUIRE(plugin.step(session.get(), other.data(), uint32_t(other.size()), 4, APR_STEP_LOGITS_ALL, ours3.data()) ==
            APR_OK);
    ref.step(other.data(), uint32_t(other.size()), 4, true, theirs3.data());
    compare(ours3, theirs3, V, min_cosine, worst, "rewind");
    return worst;
}

void check_type(uint32_t type, const char* type_name) {
    VulkanPlugin plugin;
    std::string why;
    APR_SKIP_TEST_UNLESS(plugin.device_present(why), why);
    for (uint32_t arch : {APR_ARCH_LLAMA, APR_ARCH_QWEN2, APR_ARCH_QWEN3}) {
        CAPTURE(arch_name(arch), type_name);
        TestModelView model(tiny_shape(arch));
        model.add_random_weights(7 + arch, type);
        Worst w = run_against_reference(plugin, model.view(), 32, 0.999);
        std::cout << "[vulkan] " << arch_name(arch) << " " << type_name << " vs reference (prefill 7, decode 16, rewind): worst cosine "
                  << std::setprecision(8) << w.cosine << ", max |diff| " << std::setprecision(3) << w.max_abs << std::endl;
    }
}

}  // namespace

TEST_CASE("vulkan vs reference: F32", "[vulkan]") { check_type(APR_TYPE_F32, "F32"); }
TEST_CASE("vulkan vs reference: F16", "[vulkan]") { check_type(APR_TYPE_F16, "F16"); }
TEST_CASE("vulkan vs reference: BF16", "[vulkan]") { check_type(APR_TYPE_BF16, "BF16"); }
TEST_CASE("vulkan vs reference: Q8_0", "[vulkan]") { check_type(APR_TYPE_Q8_0, "Q8_0"); }
TEST_CASE("vulkan vs reference: Q4_0", "[vulkan]") { check_type(APR_TYPE_Q4_0, "Q4_0"); }
TEST_CASE("vulkan vs reference: Q4_1", "[vulkan]") { check_type(APR_TYPE_Q4_1, "Q4_1"); }
TEST_CASE("vulkan vs reference: Q5_0", "[vulkan]") { check_type(APR_TYPE_Q5_0, "Q5_0"); }
TEST_CASE("vulkan vs reference: Q5_1", "[vulkan]") { check_type(APR_TYPE_Q5_1, "Q5_1"); }
TEST_CASE("vulkan vs reference: Q4_K", "[vulkan]") { check_type(APR_TYPE_Q4_K, "Q4_K"); }
TEST_CASE("vulkan vs reference: Q5_K", "[vulkan]") { check_type(APR_TYPE_Q5_K, "Q5_K"); }
TEST_CASE("vulkan vs reference: Q6_K", "[vulkan]") { check_type(APR_TYPE_Q6_K, "Q6_K"); }

TEST_CASE("vulkan vs reference: synthetic GGUF models, every arch x weight type", "[vulkan]") {
    VulkanPlugin plugin;
    std::string why;
    APR_SKIP_TEST_UNLESS(plugin.device_present(why), why);
    const auto dir = apr::test::scratch_dir("vulkan_synthetic");
    const std::vector<std::pair<uint32_t, const char*>> types = {
        {APR_TYPE_F32, "F32"},   {APR_TYPE_F16, "F16"},   {APR_TYPE_BF16, "BF16"}, {APR_TYPE_Q8_0, "Q8_0"},
        {APR_TYPE_Q4_0, "Q4_0"}, {APR_TYPE_Q4_1, "Q4_1"}, {APR_TYPE_Q5_0, "Q5_0"}, {APR_TYPE_Q5_1, "Q5_1"},
        {APR_TYPE_Q4_K, "Q4_K"}, {APR_TYPE_Q5_K, "Q5_K"}, {APR_TYPE_Q6_K, "Q6_K"}};
    for (const char* arch : {"llama", "qwen2", "qwen3"}) {
        Worst arch_worst;
        for (const auto& [type, type_name] : types) {
            CAPTURE(arch, type_name);
            apr::SyntheticModelSpec spec;
            spec.arch = arch;
            spec.n_vocab = 300;
            spec.n_embd = 256;
            spec.n_layer = 2;
            spec.n_head = 4;
            spec.n_head_kv = 2;
            spec.n_ff = 256;
            spec.weight_type = type;
            spec.seed = 11;
            const std::string path = (dir / (std::string(arch) + "-" + type_name + ".gguf")).string();
            apr::write_synthetic_model(path, spec, 2);
            auto model = apr::Model::load(path);
            Worst w = run_against_reference(plugin, model->view(), 32, 0.999);
            arch_worst.cosine = std::min(arch_worst.cosine, w.cosine);
            arch_worst.max_abs = std::max(arch_worst.max_abs, w.max_abs);
        }
        std::cout << "[vulkan] synthetic " << arch << " GGUF, all 11 types vs reference: worst cosine "
                  << std::setprecision(8) << arch_worst.cosine << ", max |diff| " << std::setprecision(3)
                  << arch_worst.max_abs << std::endl;
    }
    // Tied embeddings, Llama 3 rope_freqs, and mixed types as llama-quantize writes them.
    apr::SyntheticModelSpec spec;
    spec.n_vocab = 300;
    spec.n_embd = 256;
    spec.n_ff = 512;
    spec.weight_type = APR_TYPE_Q4_K;
    spec.output_type = APR_TYPE_Q6_K;
    spec.embd_type = APR_TYPE_Q8_0;
    spec.llama3_rope_freqs = true;
    spec.rope_freq_base = 500000;
    const std::string mixed = (dir / "llama3-mixed.gguf").string();
    apr::write_synthetic_model(mixed, spec, 2);
    auto model = apr::Model::load(mixed);
    Worst w = run_against_reference(plugin, model->view(), 32, 0.999);
    spec.tied_embeddings = true;
    spec.output_type.reset();
    spec.embd_type = APR_TYPE_Q6_K;
    const std::string tied = (dir / "llama3-tied.gguf").string();
    apr::write_synthetic_model(tied, spec, 2);
    auto tied_model = apr::Model::load(tied);
    REQUIRE(tied_model->view().tied_embeddings != 0);
    Worst wt = run_against_reference(plugin, tied_model->view(), 32, 0.999);
    std::cout << "[vulkan] synthetic llama3 rope_freqs mixed Q4_K/Q6_K/Q8_0: worst cosine " << std::setprecision(8)
              << w.cosine << "; tied embeddings: " << wt.cosine << std::endl;
}

TEST_CASE("vulkan vs reference: prefill longer than one submission, RoPE scaling and rope_freqs", "[vulkan]") {
    VulkanPlugin plugin;
    std::string why;
    APR_SKIP_TEST_UNLESS(plugin.device_present(why), why);
    TinyShape shape = tiny_shape(APR_ARCH_LLAMA);
    shape.rope_freq_base = 500000.0f;
    shape.rope_freq_scale = 0.25f;
    TestModelView model(shape);
    model.add_random_weights(99, APR_TYPE_Q8_0);
    std::vector<float> freqs(shape.head_dim / 2);
    for (size_t i = 0; i < freqs.size(); ++i) freqs[i] = 1.0f + 0.25f * float(i);
    model.add("rope_freqs.weight", freqs, freqs.size());

    const apr_model_view& view = model.view();
    const uint32_t n_ctx = 320, n = 300;  // more tokens than one submission holds (256)
    ReferenceForward ref(view, n_ctx, 2);
    VulkanSession session(plugin, view, n_ctx);
    INFO(session.open_error());
    REQUIRE(session.open_status() == APR_OK);
    std::vector<int32_t> tokens(n);
    for (uint32_t i = 0; i < n; ++i) tokens[i] = int32_t((i * 37 + 5) % view.n_vocab);
    std::vector<float> ours(size_t(n) * view.n_vocab), theirs(ours.size());
    REQUIRE(plugin.step(session.get(), tokens.data(), n, 0, APR_STEP_LOGITS_ALL, ours.data()) == APR_OK);
    ref.step(tokens.data(), n, 0, true, theirs.data());
    Worst worst;
    compare(ours, theirs, view.n_vocab, 0.999, worst, "long prefill");
    // Last-token logits only, after a rewind into the middle of the first submission.
    std::vector<float> last(view.n_vocab), ref_last(view.n_vocab);
    REQUIRE(plugin.step(session.get(), tokens.data() + 10, 80, 10, 0, last.data()) == APR_OK);
    ref.step(tokens.data() + 10, 80, 10, false, ref_last.data());
    compare(last, ref_last, view.n_vocab, 0.999, worst, "rewound prefill, last logits");
    std::cout << "[vulkan] long prefill (300 tokens, rope scale 0.25, rope_freqs): worst cosine " << std::setprecision(8)
              << worst.cosine << ", max |diff| " << std::setprecision(3) << worst.max_abs << std::endl;
}

// Decode steps attend over the cache in splits of 32 positions that are then combined; steps
// from position 30 to 69 cross one and two split boundaries (and land on them exactly).
TEST_CASE("vulkan vs reference: decode across attention splits", "[vulkan]") {
    VulkanPlugin plugin;
    std::string why;
    APR_SKIP_TEST_UNLESS(plugin.device_present(why), why);
    for (uint32_t arch : {APR_ARCH_LLAMA, APR_ARCH_QWEN2}) {
        for (uint32_t type : {APR_TYPE_Q4_0, APR_TYPE_Q4_K}) {
            CAPTURE(arch_name(arch), type);
            TestModelView model(tiny_shape(arch));
            model.add_random_weights(11 + arch, type);
            const apr_model_view& view = model.view();
            const size_t V = view.n_vocab;
            const uint32_t n_ctx = 96, n_prompt = 30, n_decode = 40;
            ReferenceForward ref(view, n_ctx, 2);
            VulkanSession session(plugin, view, n_ctx);
            INFO(session.open_error());
            REQUIRE(session.open_status() == APR_OK);
            std::vector<int32_t> prompt(n_prompt);
            for (uint32_t i = 0; i < n_prompt; ++i) prompt[i] = int32_t((i * 13 + 3) % V);
            std::vector<float> ours(V), theirs(V);
            REQUIRE(plugin.step(session.get(), prompt.data(), n_prompt, 0, 0, ours.data()) == APR_OK);
            ref.step(prompt.data(), n_prompt, 0, false, theirs.data());
            Worst worst;
            compare(ours, theirs, V, 0.999, worst, "prefill");
            int32_t next = int32_t(argmax(theirs.data(), V));
            for (uint32_t pos = n_prompt; pos < n_prompt + n_decode; ++pos) {
                INFO("decode at position " << pos);
                REQUIRE(plugin.step(session.get(), &next, 1, pos, 0, ours.data()) == APR_OK);
                ref.step(&next, 1, pos, false, theirs.data());
                compare(ours, theirs, V, 0.999, worst, "decode");
                next = int32_t(argmax(theirs.data(), V));
            }
            std::cout << "[vulkan] " << arch_name(arch) << " " << (type == APR_TYPE_Q4_0 ? "Q4_0" : "Q4_K") << " decode to position "
                      << n_prompt + n_decode << ": worst cosine " << std::setprecision(8) << worst.cosine
                      << ", max |diff| " << std::setprecision(3) << worst.max_abs << std::endl;
        }
    }
}

TEST_CASE("vulkan: unsupported models and broken calls fail with a status and a reason", "[vulkan]") {
    VulkanPlugin plugin;
    std::string why;
    APR_SKIP_TEST_UNLESS(plugin.device_present(why), why);
    TestModelView model(tiny_shape(APR_ARCH_LLAMA));
    model.add_random_weights(3, APR_TYPE_F16);

    apr_model_view bad_arch = model.view();
    bad_arch.arch = 9;
    bad_arch.arch_name = "mamba";
    {
        VulkanSession s(plugin, bad_arch, 16);
        CHECK(s.open_status() == APR_ERR_UNSUPPORTED);
        CHECK(s.open_error().find("mamba") != std::string::npos);
        CHECK(s.get() == nullptr);
    }
    apr_model_view missing = model.view();
    std::vector<apr_tensor_view> fewer(missing.tensors, missing.tensors + missing.n_tensors);
    fewer.erase(std::remove_if(fewer.begin(), fewer.end(),
                               [](const apr_tensor_view& t) { return std::string(t.name) == "blk.1.ffn_up.weight"; }),
                fewer.end());
    missing.tensors = fewer.data();
    missing.n_tensors = uint32_t(fewer.size());
    {
        VulkanSession s(plugin, missing, 16);
        CHECK(s.open_status() == APR_ERR_UNSUPPORTED);
        CHECK(s.open_error().find("blk.1.ffn_up.weight") != std::string::npos);
    }
    apr_model_view odd_type = model.view();
    std::vector<apr_tensor_view> retyped(odd_type.tensors, odd_type.tensors + odd_type.n_tensors);
    for (auto& t : retyped)
        if (std::string(t.name) == "blk.0.attn_q.weight") t.type = 10;  // Q2_K
    odd_type.tensors = retyped.data();
    {
        VulkanSession s(plugin, odd_type, 16);
        CHECK(s.open_status() == APR_ERR_UNSUPPORTED);
        CHECK(s.open_error().find("blk.0.attn_q.weight") != std::string::npos);
    }

    VulkanSession s(plugin, model.view(), 16);
    REQUIRE(s.open_status() == APR_OK);
    apr::test::check_bad_step_calls(plugin, s.get(), model.view().n_vocab);
    plugin.desc().close(nullptr);  // accepted
}

TEST_CASE("vulkan: probe describes the device", "[vulkan]") {
    VulkanPlugin plugin;
    CHECK(std::string(plugin.desc().name) == "vulkan");
    CHECK(plugin.desc().abi_version == APR_BACKEND_ABI_VERSION);
    std::string why;
    apr_device_info info{};
    APR_SKIP_TEST_UNLESS(plugin.device_present(why, &info), why);
    CHECK(std::strlen(info.description) > 0);
    CHECK(std::string(info.description).find("Vulkan 1.") != std::string::npos);
    CHECK(std::strlen(info.driver) > 0);
    std::cout << "[vulkan] device: " << info.description << " (" << info.driver << ")" << std::endl;
}
