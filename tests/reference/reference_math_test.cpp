// The reference forward's math checked against values worked out by hand (RoPE, causal
// attention with its 1/sqrt(head_dim) scale and softmax, GQA head mapping), and against
// properties that pin each architecture detail (qwen2 biases, qwen3 q/k norms, rope_freqs).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "reference/reference_forward.hpp"
#include "reference/reference_kernels.hpp"
#include "reference/test_model_view.hpp"

using apr::ReferenceForward;
using apr::test::TestModelView;
using apr::test::TinyShape;

namespace {

std::vector<float> run_all(const apr_model_view& view, const std::vector<int32_t>& tokens) {
    ReferenceForward ref(view, 16, 2);
    std::vector<float> logits(tokens.size() * ref.n_vocab());
    ref.step(tokens.data(), static_cast<uint32_t>(tokens.size()), 0, true, logits.data());
    return logits;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    float m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

const std::vector<int32_t> kTokens = {1, 17, 42, 9, 30, 51, 7, 63};

}  // namespace

TEST_CASE("reference kernels: dot, rmsnorm, RoPE pairs and SwiGLU by hand", "[reference]") {
    std::vector<float> a(37), b(37);
    double expected = 0;
    for (int i = 0; i < 37; ++i) {
        a[i] = float(i + 1);
        b[i] = (i % 2 ? -0.5f : 0.25f);
        expected += double(a[i]) * b[i];
    }
    CHECK(apr::reference::dot_f64(a.data(), b.data(), 37) == expected);

    const float x[4] = {1, -1, 1, -1}, w[4] = {1, 2, 3, 4};
    float y[4];
    apr::reference::rms_norm(x, w, y, 4, 0.0f);  // rms is exactly 1
    CHECK(std::vector<float>(y, y + 4) == std::vector<float>{1, -2, 3, -4});

    // NORM pairs (0,1),(2,3); NEOX pairs (0,2),(1,3). base 100, head 4: theta_0 = p, theta_1 = p / 10.
    float norm_head[4] = {1, 0, 1, 0};
    apr::reference::apply_rope(norm_head, 4, APR_ROPE_NORM, 2, 100.0f, 1.0f, nullptr);
    CHECK(norm_head[0] == Approx(std::cos(2.0)).margin(1e-7));
    CHECK(norm_head[1] == Approx(std::sin(2.0)).margin(1e-7));
    CHECK(norm_head[2] == Approx(std::cos(0.2)).margin(1e-7));
    CHECK(norm_head[3] == Approx(std::sin(0.2)).margin(1e-7));
    float neox_head[4] = {1, 1, 0, 0};
    apr::reference::apply_rope(neox_head, 4, APR_ROPE_NEOX, 2, 100.0f, 1.0f, nullptr);
    CHECK(neox_head[0] == Approx(std::cos(2.0)).margin(1e-7));
    CHECK(neox_head[2] == Approx(std::sin(2.0)).margin(1e-7));
    CHECK(neox_head[1] == Approx(std::cos(0.2)).margin(1e-7));
    CHECK(neox_head[3] == Approx(std::sin(0.2)).margin(1e-7));
    // Frequency scale and divisors: theta_0 = 2 * 0.5 / 4, theta_1 = 2 * 0.5 / 10 / 0.5.
    float scaled[4] = {0, 1, 0, 1};
    const float divisors[2] = {4.0f, 0.5f};
    apr::reference::apply_rope(scaled, 4, APR_ROPE_NORM, 2, 100.0f, 0.5f, divisors);
    CHECK(scaled[0] == Approx(-std::sin(0.25)).margin(1e-7));
    CHECK(scaled[1] == Approx(std::cos(0.25)).margin(1e-7));
    CHECK(scaled[2] == Approx(-std::sin(0.2)).margin(1e-7));
    CHECK(scaled[3] == Approx(std::cos(0.2)).margin(1e-7));

    float gate[2] = {0.0f, 2.0f};
    const float up[2] = {5.0f, 3.0f};
    apr::reference::swiglu(gate, up, 2);
    CHECK(gate[0] == 0.0f);
    CHECK(gate[1] == Approx(2.0 / (1.0 + std::exp(-2.0)) * 3.0).epsilon(1e-6));
}

// One layer, n_embd 4, two query heads sharing one kv head of width 2 (so theta = pos), eps 0,
// embeddings of ±1 (rms exactly 1), identity-like projections, no FFN, logits = x0, x2, x3 of
// the normalised final residual. Positions 0 and 1 are worked out by hand below.
TEST_CASE("reference: a one-layer model computed by hand (RoPE, causal softmax, scaling)", "[reference]") {
    TinyShape shape;
    shape.n_vocab = 3;
    shape.n_embd = 4;
    shape.n_layer = 1;
    shape.n_head = 2;
    shape.n_head_kv = 1;
    shape.head_dim = 2;
    shape.n_ff = 2;
    shape.rms_norm_eps = 0.0f;
    TestModelView model(shape);
    const std::vector<float> ones(4, 1.0f);
    // Rows are output features, each row n_embd (or q_dim) long.
    model.add("token_embd.weight", {1, 1, 1, -1, /**/ 1, -1, -1, 1, /**/ -1, 1, 1, 1}, 4, 3);
    model.add("output_norm.weight", ones, 4);
    model.add("output.weight", {1, 0, 0, 0, /**/ 0, 0, 1, 0, /**/ 0, 0, 0, 1}, 4, 3);
    model.add("blk.0.attn_norm.weight", ones, 4);
    model.add("blk.0.ffn_norm.weight", ones, 4);
    // q head 0 = (h0, h1), q head 1 = (h1, -h0); k = (h0, h1); v = (h2, h3).
    model.add("blk.0.attn_q.weight", {1, 0, 0, 0, /**/ 0, 1, 0, 0, /**/ 0, 1, 0, 0, /**/ -1, 0, 0, 0}, 4, 4);
    model.add("blk.0.attn_k.weight", {1, 0, 0, 0, /**/ 0, 1, 0, 0}, 4, 2);
    model.add("blk.0.attn_v.weight", {0, 0, 1, 0, /**/ 0, 0, 0, 1}, 4, 2);
    // Wo: identity from [head0 (2), head1 (2)] to the 4 residual dimensions.
    model.add("blk.0.attn_output.weight", {1, 0, 0, 0, /**/ 0, 1, 0, 0, /**/ 0, 0, 1, 0, /**/ 0, 0, 0, 1}, 4, 4);
    model.add("blk.0.ffn_gate.weight", std::vector<float>(8, 0.0f), 4, 2);
    model.add("blk.0.ffn_up.weight", std::vector<float>(8, 0.0f), 4, 2);
    model.add("blk.0.ffn_down.weight", std::vector<float>(8, 0.0f), 2, 4);

    const auto logits = run_all(model.view(), {0, 1});

    // Position 0 (token 0 = (1,1,1,-1)) sees only itself: both heads output v0 = (1,-1), so
    // x = (2, 0, 2, -2), rms = sqrt(3), logits = (2, 2, -2) / sqrt(3).
    const double r3 = std::sqrt(3.0);
    CHECK(logits[0] == Approx(2 / r3).margin(1e-6));
    CHECK(logits[1] == Approx(2 / r3).margin(1e-6));
    CHECK(logits[2] == Approx(-2 / r3).margin(1e-6));

    // Position 1 (token 1 = (1,-1,-1,1)). With R(t) the rotation by angle t:
    //  head 0: q = R(1)(1,-1); k0 = (1,1), k1 = R(1)(1,-1): scores (2 sin 1, 2) / sqrt(2)
    //  head 1: q = R(1)(-1,-1):                            scores (-2 cos 1, 0) / sqrt(2)
    //  v0 = (1,-1), v1 = (-1,1): each head outputs (w0 - w1) * (1,-1).
    const double s2 = std::sqrt(2.0);
    const double d0 = std::tanh((s2 * std::sin(1.0) - s2) / 2);  // w0 - w1 = tanh((s0 - s1) / 2)
    const double d1 = std::tanh((-s2 * std::cos(1.0) - 0.0) / 2);
    const double x[4] = {1 + d0, -1 - d0, -1 + d1, 1 - d1};
    const double rms = std::sqrt((x[0] * x[0] + x[1] * x[1] + x[2] * x[2] + x[3] * x[3]) / 4);
    CHECK(logits[3] == Approx(x[0] / rms).margin(1e-6));
    CHECK(logits[4] == Approx(x[2] / rms).margin(1e-6));
    CHECK(logits[5] == Approx(x[3] / rms).margin(1e-6));
}

TEST_CASE("reference: query head h reads kv head h / (n_head / n_head_kv)", "[reference]") {
    TinyShape shape;  // n_head 4, n_head_kv 2, head_dim 8: heads 0,1 -> kv 0; heads 2,3 -> kv 1
    shape.n_layer = 1;
    TestModelView a(shape);
    a.add_random_weights(21);
    // Zero the values of kv head 1 (rows 8..15 of Wv): query heads 2 and 3 then output zeros.
    std::mt19937 rng(5);
    std::vector<float> wv = apr::test::normal_values(rng, 16 * 32, 0.0f, 0.1f);
    std::fill(wv.begin() + 8 * 32, wv.end(), 0.0f);
    a.set("blk.0.attn_v.weight", wv);

    // Removing query heads 2 and 3 from Wo (columns 16..31) changes nothing...
    std::vector<float> wo = apr::test::normal_values(rng, 32 * 32, 0.0f, 0.1f);
    a.set("blk.0.attn_output.weight", wo);
    const auto with_wo = run_all(a.view(), kTokens);
    for (size_t row = 0; row < 32; ++row) std::fill(wo.begin() + row * 32 + 16, wo.begin() + row * 32 + 32, 0.0f);
    a.set("blk.0.attn_output.weight", wo);
    CHECK(max_abs_diff(with_wo, run_all(a.view(), kTokens)) == 0.0f);
    // ...while removing query heads 0 and 1 (columns 0..15) does.
    for (size_t row = 0; row < 32; ++row) std::fill(wo.begin() + row * 32, wo.begin() + row * 32 + 16, 0.0f);
    a.set("blk.0.attn_output.weight", wo);
    CHECK(max_abs_diff(with_wo, run_all(a.view(), kTokens)) > 1e-3f);
}

TEST_CASE("reference: qwen2 applies q/k/v biases", "[reference]") {
    TinyShape shape;
    shape.rope_type = APR_ROPE_NEOX;
    TestModelView model(shape);
    model.add_random_weights(31);
    const auto llama = run_all(model.view(), kTokens);
    for (uint32_t l = 0; l < shape.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        model.add(p + "attn_q.bias", std::vector<float>(32, 0.0f), 32);
        model.add(p + "attn_k.bias", std::vector<float>(16, 0.0f), 16);
        model.add(p + "attn_v.bias", std::vector<float>(16, 0.0f), 16);
    }
    apr_model_view qwen2 = model.view();
    qwen2.arch = APR_ARCH_QWEN2;
    CHECK(max_abs_diff(llama, run_all(qwen2, kTokens)) == 0.0f);  // zero biases: the same model
    for (const char* bias : {"blk.0.attn_q.bias", "blk.1.attn_v.bias"}) {
        model.set(bias, std::vector<float>(std::string(bias).find("_q") != std::string::npos ? 32 : 16, 0.5f));
        qwen2 = model.view();
        qwen2.arch = APR_ARCH_QWEN2;
        CHECK(max_abs_diff(llama, run_all(qwen2, kTokens)) > 1e-3f);
    }
}

TEST_CASE("reference: qwen3 normalises each q and k head before RoPE", "[reference]") {
    TinyShape shape;
    shape.arch = APR_ARCH_QWEN3;
    shape.rope_type = APR_ROPE_NEOX;
    shape.rms_norm_eps = 1e-6f;
    TestModelView model(shape);
    model.add_random_weights(41);
    // Scaling Wq and Wk by 8 changes nothing once each head is RMS-normalised, whereas the
    // same weights read as llama (no head norms) give other logits.
    std::mt19937 rng(3);
    auto wq = apr::test::normal_values(rng, 32 * 32, 0.0f, 0.1f);
    auto wk = apr::test::normal_values(rng, 32 * 16, 0.0f, 0.1f);
    model.set("blk.0.attn_q.weight", wq);
    model.set("blk.0.attn_k.weight", wk);
    const auto before = run_all(model.view(), kTokens);
    apr_model_view as_llama = model.view();
    as_llama.arch = APR_ARCH_LLAMA;
    const auto llama_before = run_all(as_llama, kTokens);
    for (auto& v : wq) v *= 8;
    for (auto& v : wk) v *= 8;
    model.set("blk.0.attn_q.weight", wq);
    model.set("blk.0.attn_k.weight", wk);
    CHECK(max_abs_diff(before, run_all(model.view(), kTokens)) < 1e-4f);
    as_llama = model.view();
    as_llama.arch = APR_ARCH_LLAMA;
    CHECK(max_abs_diff(llama_before, run_all(as_llama, kTokens)) > 1e-3f);
    // And the head norm weights are applied.
    model.set("blk.1.attn_k_norm.weight", std::vector<float>(8, 2.0f));
    CHECK(max_abs_diff(before, run_all(model.view(), kTokens)) > 1e-3f);
}

TEST_CASE("reference: rope_freqs divisors and the linear frequency scale", "[reference]") {
    TinyShape shape;
    TestModelView model(shape);
    model.add_random_weights(51);
    const auto plain = run_all(model.view(), kTokens);
    model.add("rope_freqs.weight", std::vector<float>(4, 1.0f), 4);
    CHECK(max_abs_diff(plain, run_all(model.view(), kTokens)) == 0.0f);  // divisors of 1
    model.set("rope_freqs.weight", std::vector<float>(4, 2.0f));
    const auto halved = run_all(model.view(), kTokens);
    CHECK(max_abs_diff(plain, halved) > 1e-3f);

    TestModelView scaled(shape);
    scaled.add_random_weights(51);
    apr_model_view v = scaled.view();
    v.rope_freq_scale = 0.5f;  // every theta halved, as divisors of 2 do
    CHECK(max_abs_diff(halved, run_all(v, kTokens)) <= 1e-6f);

    // NEOX pairing is a different model from NORM pairing.
    v = scaled.view();
    v.rope_type = APR_ROPE_NEOX;
    CHECK(max_abs_diff(plain, run_all(v, kTokens)) > 1e-3f);
}

TEST_CASE("reference: quantized weights run through the core's dequantizer", "[reference]") {
    TinyShape shape;
    shape.n_embd = 64;  // rows of whole Q8_0 / Q4_0 blocks
    shape.n_ff = 96;
    shape.head_dim = 16;
    TestModelView f32(shape);
    f32.add_random_weights(61, APR_TYPE_F32);
    const auto exact = run_all(f32.view(), kTokens);
    for (uint32_t type : {APR_TYPE_F16, APR_TYPE_BF16, APR_TYPE_Q8_0, APR_TYPE_Q4_0}) {
        CAPTURE(type);
        TestModelView q(shape);
        q.add_random_weights(61, type);
        const auto got = run_all(q.view(), kTokens);
        double dot = 0, na = 0, nb = 0;
        for (size_t i = 0; i < got.size(); ++i) {
            dot += double(got[i]) * exact[i];
            na += double(got[i]) * got[i];
            nb += double(exact[i]) * exact[i];
        }
        const double cosine = dot / std::sqrt(na * nb);
        CAPTURE(cosine);
        CHECK(cosine > (type == APR_TYPE_Q4_0 ? 0.95 : 0.999));  // 4-bit weights: ~10% error each
        CHECK(max_abs_diff(exact, got) > 0.0f);  // the weights really were stored quantized
    }
}
