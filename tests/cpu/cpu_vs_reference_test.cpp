// The CPU plugin against the core's ReferenceForward on synthetic models from the GGUF writer:
// every architecture variant (llama, llama with Llama 3 rope_freqs, qwen2, qwen3, tied
// embeddings) in every weight type, through a prefill with all logits, 16 decode steps fed
// the reference's argmax, and rewinds (replaying positions must give the same logits, and a
// different continuation after a rewind must again match the reference).
#include <catch2/catch.hpp>

#include <filesystem>

#include "cpu/cpu_plugin_support.hpp"
#include "model/model.hpp"
#include "model/synthetic_model.hpp"
#include "reference/reference_forward.hpp"
#include "support/testdata.hpp"

namespace {

using namespace apr::test::cpu;
using apr::test::argmax;

struct Variant {
    const char* name;
    const char* arch;
    bool tied;
    bool llama3_rope_freqs;
};

constexpr Variant kVariants[] = {
    {"llama", "llama", false, false},
    {"llama3-rope-freqs", "llama", false, true},
    {"qwen2", "qwen2", false, false},
    {"qwen3", "qwen3", false, false},
    {"tied", "llama", true, false},
};

constexpr uint32_t kTypes[] = {APR_TYPE_F32,  APR_TYPE_F16,  APR_TYPE_BF16, APR_TYPE_Q8_0, APR_TYPE_Q4_0, APR_TYPE_Q4_1,
                               APR_TYPE_Q5_0, APR_TYPE_Q5_1, APR_TYPE_Q4_K, APR_TYPE_Q5_K, APR_TYPE_Q6_K};

const char* type_name(uint32_t t) {
    switch (t) {
        case APR_TYPE_F32: return "F32";
        case APR_TYPE_F16: return "F16";
        case APR_TYPE_BF16: return "BF16";
        case APR_TYPE_Q8_0: return "Q8_0";
        case APR_TYPE_Q4_0: return "Q4_0";
        case APR_TYPE_Q4_1: return "Q4_1";
        case APR_TYPE_Q5_0: return "Q5_0";
        case APR_TYPE_Q5_1: return "Q5_1";
        case APR_TYPE_Q4_K: return "Q4_K";
        case APR_TYPE_Q5_K: return "Q5_K";
        case APR_TYPE_Q6_K: return "Q6_K";
        default: return "?";
    }
}

Tolerance tolerance_for(uint32_t type) {
    const bool exact_weights = type == APR_TYPE_F32 || type == APR_TYPE_F16 || type == APR_TYPE_BF16;
    return exact_weights ? Tolerance{0.9999, 5e-2} : Tolerance{0.999, 5e-2};
}

void check_variant(const Variant& variant, uint32_t type, const std::filesystem::path& dir, const std::string& kv_type = "") {
    ScopedEnv kv("APR_CPU_KV_TYPE", kv_type);
    apr::SyntheticModelSpec spec;
    spec.arch = variant.arch;
    spec.tied_embeddings = variant.tied;
    spec.llama3_rope_freqs = variant.llama3_rope_freqs;
    spec.n_embd = 256;  // whole K-quant super-blocks
    spec.n_ff = 512;
    spec.n_head = 4;
    spec.n_head_kv = 2;
    spec.weight_type = type;
    spec.seed = 7;
    const std::string label = std::string(variant.name) + " " + type_name(type) + (kv_type.empty() ? "" : " kv " + kv_type);
    const auto path = dir / (std::string(variant.name) + "-" + type_name(type) + ".gguf");
    apr::write_synthetic_model(path.string(), spec, 2);
    auto model = apr::Model::load(path.string());
    const apr_model_view& view = model->view();
    const size_t n_vocab = view.n_vocab;
    const Tolerance tol = tolerance_for(type);

    apr::ReferenceForward ref(view, 64, 2);
    Session cpu(view, 64, 2);
    Agreement prefill_agg, decode_agg;

    // Prefill of 8 tokens, all logits.
    const std::vector<int32_t> prompt = {1, 17, 42, 99, 300, 12, 7, 260};
    std::vector<float> ref_logits(prompt.size() * n_vocab);
    ref.step(prompt.data(), static_cast<uint32_t>(prompt.size()), 0, true, ref_logits.data());
    const std::vector<float> prefill = cpu.step(prompt, 0, true);
    for (size_t p = 0; p < prompt.size(); ++p) {
        CAPTURE(label, p);
        compare_row(&prefill[p * n_vocab], &ref_logits[p * n_vocab], n_vocab, tol, prefill_agg);
    }

    // 16 decode steps, each fed the reference's argmax.
    std::vector<float> row(n_vocab);
    int32_t next = static_cast<int32_t>(argmax(&ref_logits[(prompt.size() - 1) * n_vocab], n_vocab));
    std::vector<int32_t> fed;
    std::vector<std::vector<float>> decoded;
    for (uint32_t i = 0; i < 16; ++i) {
        const uint32_t pos = static_cast<uint32_t>(prompt.size()) + i;
        CAPTURE(label, pos);
        ref.step(&next, 1, pos, false, row.data());
        const std::vector<float> ours = cpu.step({next}, pos, false);
        compare_row(ours.data(), row.data(), n_vocab, tol, decode_agg);
        fed.push_back(next);
        decoded.push_back(ours);
        next = static_cast<int32_t>(argmax(row.data(), n_vocab));
    }

    // Rewind into the prompt and replay its tail as a prefill: the same logits as before.
    {
        const std::vector<int32_t> tail(prompt.begin() + 4, prompt.end());
        const std::vector<float> again = cpu.step(tail, 4, true);
        for (size_t p = 0; p < tail.size(); ++p)
            for (size_t i = 0; i < n_vocab; ++i) REQUIRE(again[p * n_vocab + i] == Approx(prefill[(4 + p) * n_vocab + i]).margin(1e-5));
    }
    // Replay the first 4 decode steps: the same logits as the first time.
    for (uint32_t i = 0; i < 4; ++i) {
        const std::vector<float> again = cpu.step({fed[i]}, static_cast<uint32_t>(prompt.size()) + i, false);
        for (size_t k = 0; k < n_vocab; ++k) REQUIRE(again[k] == Approx(decoded[i][k]).margin(1e-5));
    }
    // Rewind to position 10 and continue differently; the reference does the same.
    {
        const std::vector<int32_t> other = {5, 77, 123};
        ref.step(other.data(), 3, 10, true, ref_logits.data());
        const std::vector<float> ours = cpu.step(other, 10, true);
        for (size_t p = 0; p < other.size(); ++p) {
            CAPTURE(label, p);
            compare_row(&ours[p * n_vocab], &ref_logits[p * n_vocab], n_vocab, tol, decode_agg);
        }
    }
    print_agreement(label + " prefill", prefill_agg);
    print_agreement(label + " decode+rewind", decode_agg);
}

void check_all_types(const Variant& variant) {
    const auto dir = apr::test::scratch_dir(std::string("cpu_vs_reference_") + variant.name);
    for (uint32_t type : kTypes) {
        DYNAMIC_SECTION(variant.name << " " << type_name(type)) { check_variant(variant, type, dir); }
    }
}

}  // namespace

TEST_CASE("cpu plugin matches the reference: llama, every weight type", "[cpu][reference]") { check_all_types(kVariants[0]); }
TEST_CASE("cpu plugin matches the reference: llama with rope_freqs, every weight type", "[cpu][reference]") {
    check_all_types(kVariants[1]);
}
TEST_CASE("cpu plugin matches the reference: qwen2, every weight type", "[cpu][reference]") { check_all_types(kVariants[2]); }
TEST_CASE("cpu plugin matches the reference: qwen3, every weight type", "[cpu][reference]") { check_all_types(kVariants[3]); }
TEST_CASE("cpu plugin matches the reference: tied embeddings, every weight type", "[cpu][reference]") {
    check_all_types(kVariants[4]);
}

TEST_CASE("cpu plugin matches the reference with an f16 KV cache", "[cpu][reference]") {
    const auto dir = apr::test::scratch_dir("cpu_vs_reference_kv_f16");
    for (uint32_t type : {APR_TYPE_F16, APR_TYPE_Q8_0, APR_TYPE_Q4_K}) {
        DYNAMIC_SECTION("llama " << type_name(type)) { check_variant(kVariants[0], type, dir, "f16"); }
        DYNAMIC_SECTION("qwen3 " << type_name(type)) { check_variant(kVariants[3], type, dir, "f16"); }
    }
}
