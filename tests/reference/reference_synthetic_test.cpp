// The reference forward on models written by the project's own GGUF writer and read back by
// Model::load: every architecture detail the view can carry (qwen2 biases, qwen3 q/k norms,
// tied embeddings, Llama 3 rope_freqs) runs and gives finite logits, and each detail really
// reaches the logits.
#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "model/ggml_type.hpp"
#include "model/model.hpp"
#include "model/synthetic_model.hpp"
#include "reference/reference_forward.hpp"
#include "support/testdata.hpp"

namespace {

const std::vector<int32_t> kTokens = {1, 17, 42, 99, 259, 300, 7, 280, 64, 128};

apr::SyntheticModelSpec spec_for(const std::string& arch, uint32_t type) {
    apr::SyntheticModelSpec s;
    s.arch = arch;
    s.n_vocab = 320;
    s.n_embd = 256;  // whole K-quant super-blocks
    s.n_layer = 2;
    s.n_head = 4;
    s.n_head_kv = 2;
    s.n_ff = 512;
    s.weight_type = type;
    s.seed = 7;
    return s;
}

std::vector<float> run_all(const apr_model_view& view, const std::vector<int32_t>& tokens) {
    apr::ReferenceForward ref(view, 64, 2);
    std::vector<float> logits(tokens.size() * ref.n_vocab());
    ref.step(tokens.data(), static_cast<uint32_t>(tokens.size()), 0, true, logits.data());
    return logits;
}

std::vector<float> run_decode(const apr_model_view& view, const std::vector<int32_t>& tokens) {
    apr::ReferenceForward ref(view, 64, 2);
    std::vector<float> logits(tokens.size() * ref.n_vocab());
    for (uint32_t i = 0; i < tokens.size(); ++i) ref.step(&tokens[i], 1, i, false, &logits[size_t{i} * ref.n_vocab()]);
    return logits;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    float m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

void require_finite_and_varied(const std::vector<float>& logits) {
    float lo = logits[0], hi = logits[0];
    for (float x : logits) {
        REQUIRE(std::isfinite(x));
        lo = std::min(lo, x);
        hi = std::max(hi, x);
    }
    CHECK(hi - lo > 1e-3f);  // not a constant (e.g. all-zero) output
}

// A copy of `view` without the tensors named `drop` (to show that they matter).
struct ViewWithout {
    apr_model_view view;
    std::vector<apr_tensor_view> table;
    ViewWithout(const apr_model_view& v, const std::string& drop_suffix) : view(v) {
        for (uint32_t i = 0; i < v.n_tensors; ++i) {
            const std::string name = v.tensors[i].name;
            if (name.size() < drop_suffix.size() || name.compare(name.size() - drop_suffix.size(), drop_suffix.size(), drop_suffix) != 0)
                table.push_back(v.tensors[i]);
        }
        view.tensors = table.data();
        view.n_tensors = static_cast<uint32_t>(table.size());
    }
};

}  // namespace

TEST_CASE("reference runs synthetic llama, qwen2 and qwen3 models of several weight types", "[reference][synthetic]") {
    const auto dir = apr::test::scratch_dir("reference_synthetic_archs");
    for (const std::string arch : {"llama", "qwen2", "qwen3"}) {
        for (uint32_t type : {APR_TYPE_F32, APR_TYPE_F16, APR_TYPE_Q8_0, APR_TYPE_Q4_K, APR_TYPE_Q6_K}) {
            INFO(arch << " " << apr::ggml_type_name(type));
            const std::string path = (dir / (arch + "-" + apr::ggml_type_name(type) + ".gguf")).string();
            apr::write_synthetic_model(path, spec_for(arch, type), 2);
            const auto model = apr::Model::load(path);
            const auto all = run_all(model->view(), kTokens);
            require_finite_and_varied(all);
            CHECK(max_abs_diff(all, run_decode(model->view(), kTokens)) <= 1e-5f);
        }
    }
}

TEST_CASE("reference uses qwen2's biases and qwen3's q/k norms from the file", "[reference][synthetic]") {
    const auto dir = apr::test::scratch_dir("reference_synthetic_details");
    {
        const std::string path = (dir / "qwen2.gguf").string();
        apr::write_synthetic_model(path, spec_for("qwen2", APR_TYPE_Q8_0), 2);
        const auto model = apr::Model::load(path);
        REQUIRE(apr_model_find_tensor(&model->view(), "blk.0.attn_q.bias") != nullptr);
        const auto with_bias = run_all(model->view(), kTokens);
        require_finite_and_varied(with_bias);
        // The same weights read as llama, without the biases, give other logits.
        ViewWithout no_bias(model->view(), ".bias");
        no_bias.view.arch = APR_ARCH_LLAMA;
        CHECK(max_abs_diff(with_bias, run_all(no_bias.view, kTokens)) > 1e-3f);
    }
    {
        const std::string path = (dir / "qwen3.gguf").string();
        apr::write_synthetic_model(path, spec_for("qwen3", APR_TYPE_Q8_0), 2);
        const auto model = apr::Model::load(path);
        REQUIRE(apr_model_find_tensor(&model->view(), "blk.1.attn_k_norm.weight") != nullptr);
        const auto with_norms = run_all(model->view(), kTokens);
        require_finite_and_varied(with_norms);
        apr_model_view as_llama = model->view();
        as_llama.arch = APR_ARCH_LLAMA;  // the head norms are then not applied
        CHECK(max_abs_diff(with_norms, run_all(as_llama, kTokens)) > 1e-3f);
    }
}

TEST_CASE("reference runs a model with tied embeddings", "[reference][synthetic]") {
    const auto dir = apr::test::scratch_dir("reference_synthetic_tied");
    auto spec = spec_for("llama", APR_TYPE_Q8_0);
    spec.tied_embeddings = true;
    const std::string path = (dir / "tied.gguf").string();
    apr::write_synthetic_model(path, spec, 2);
    const auto model = apr::Model::load(path);
    const apr_model_view& v = model->view();
    REQUIRE(v.tied_embeddings != 0);
    const apr_tensor_view* out = apr_model_find_tensor(&v, "output.weight");
    const apr_tensor_view* embd = apr_model_find_tensor(&v, "token_embd.weight");
    REQUIRE(out != nullptr);
    REQUIRE(embd != nullptr);
    CHECK(out->data == embd->data);
    const auto logits = run_all(v, kTokens);
    require_finite_and_varied(logits);
    CHECK(max_abs_diff(logits, run_decode(v, kTokens)) <= 1e-5f);
}

TEST_CASE("reference applies Llama 3 rope_freqs divisors from the file", "[reference][synthetic]") {
    const auto dir = apr::test::scratch_dir("reference_synthetic_rope_freqs");
    auto spec = spec_for("llama", APR_TYPE_F16);
    spec.llama3_rope_freqs = true;
    spec.rope_freq_base = 500000;
    const std::string path = (dir / "llama3.gguf").string();
    apr::write_synthetic_model(path, spec, 2);
    const auto model = apr::Model::load(path);
    REQUIRE(apr_model_find_tensor(&model->view(), "rope_freqs.weight") != nullptr);
    const auto with_freqs = run_all(model->view(), kTokens);
    require_finite_and_varied(with_freqs);
    // Llama 3's divisors only slow the lowest frequencies, whose angles stay tiny over ten
    // positions, so the logits move only a little (~1e-4) without them; but they must move.
    ViewWithout without(model->view(), "rope_freqs.weight");
    CHECK(max_abs_diff(with_freqs, run_all(without.view, kTokens)) > 1e-6f);
}

// Hidden (tag [.]): times the gate's workload on the team's "1b" synthetic preset.
TEST_CASE("reference perf: synthetic 1b preset Q8_0 written to disk: prefill 8 + 3 decodes", "[.][reference-perf]") {
    const auto dir = apr::test::scratch_dir("reference_perf_1b");
    auto spec = apr::synthetic_preset("1b");
    spec.weight_type = APR_TYPE_Q8_0;
    const std::string path = (dir / "synthetic-1b-q8_0.gguf").string();
    auto start = std::chrono::steady_clock::now();
    apr::write_synthetic_model(path, spec, 0);
    const double write_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto model = apr::Model::load(path);
    apr::ReferenceForward ref(model->view(), 64);
    const size_t nv = ref.n_vocab();
    std::vector<int32_t> tokens = {1, 17, 42, 99, 300, 512, 7, 1999};
    std::vector<float> logits(tokens.size() * nv);
    const std::clock_t cpu_start = std::clock();  // all threads' CPU time: the machine may be shared
    start = std::chrono::steady_clock::now();
    ref.step(tokens.data(), 8, 0, true, logits.data());
    const double prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::vector<float> step_logits(nv);
    const float* last = &logits[7 * nv];
    start = std::chrono::steady_clock::now();
    for (uint32_t i = 0; i < 3; ++i) {
        const int32_t next = static_cast<int32_t>(std::max_element(last, last + nv) - last);
        ref.step(&next, 1, 8 + i, false, step_logits.data());
        last = step_logits.data();
    }
    const double decode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    require_finite_and_varied(step_logits);
    std::cout << "[reference-perf] synthetic 1b preset Q8_0 (written in " << write_s << " s): prefill 8 tokens (all logits) "
              << prefill_s << " s, 3 decode steps " << decode_s << " s, total " << prefill_s + decode_s << " s on "
              << ref.n_threads() << " threads (" << double(std::clock() - cpu_start) / CLOCKS_PER_SEC << " CPU s)"
              << std::endl;
    std::filesystem::remove_all(dir);
}
