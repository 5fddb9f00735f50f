// ReferenceForward's step() contract (the semantics of apr_backend_step) and properties of its
// math that must hold exactly, on seeded random models built in memory.
#include <catch2/catch.hpp>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "reference/reference_forward.hpp"
#include "reference/test_model_view.hpp"

using apr::ReferenceForward;
using apr::test::TestModelView;
using apr::test::TinyShape;

namespace {

const std::vector<int32_t> kTokens = {1, 17, 42, 9, 30, 51, 7, 63, 0, 12};

// Logits of every position for `tokens`, as one prefill with all logits.
std::vector<float> prefill_all(ReferenceForward& ref, const std::vector<int32_t>& tokens, uint32_t pos = 0) {
    std::vector<float> logits(tokens.size() * ref.n_vocab());
    ref.step(tokens.data(), static_cast<uint32_t>(tokens.size()), pos, true, logits.data());
    return logits;
}

// Logits of every position for `tokens`, fed one decode step at a time.
std::vector<float> decode_each(ReferenceForward& ref, const std::vector<int32_t>& tokens) {
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

bool all_finite(const std::vector<float>& v) {
    for (float x : v)
        if (!std::isfinite(x)) return false;
    return true;
}

}  // namespace

TEST_CASE("reference: prefill with all logits equals token-by-token decode", "[reference]") {
    for (uint32_t arch : {APR_ARCH_LLAMA, APR_ARCH_QWEN2, APR_ARCH_QWEN3}) {
        CAPTURE(arch);
        TinyShape shape;
        shape.arch = arch;
        shape.rope_type = arch == APR_ARCH_LLAMA ? APR_ROPE_NORM : APR_ROPE_NEOX;
        TestModelView model(shape);
        model.add_random_weights(100 + arch);
        ReferenceForward prefill(model.view(), 32, 2);
        ReferenceForward decode(model.view(), 32, 2);
        const auto a = prefill_all(prefill, kTokens);
        const auto b = decode_each(decode, kTokens);
        REQUIRE(all_finite(a));
        CHECK(max_abs_diff(a, b) <= 1e-5f);
        CHECK(prefill.n_cached() == kTokens.size());
        CHECK(decode.n_cached() == kTokens.size());

        // Last-token logits are the last row of the all-logits output.
        ReferenceForward last(model.view(), 32, 2);
        std::vector<float> l(last.n_vocab());
        last.step(kTokens.data(), static_cast<uint32_t>(kTokens.size()), 0, false, l.data());
        CHECK(max_abs_diff(l, std::vector<float>(a.end() - l.size(), a.end())) == 0.0f);
    }
}

TEST_CASE("reference: results do not depend on the thread count", "[reference]") {
    TestModelView model(TinyShape{});
    model.add_random_weights(7);
    ReferenceForward one(model.view(), 16, 1);
    ReferenceForward three(model.view(), 16, 3);
    CHECK(one.n_threads() == 1);
    CHECK(three.n_threads() == 3);
    CHECK(max_abs_diff(prefill_all(one, kTokens), prefill_all(three, kTokens)) == 0.0f);
    ReferenceForward automatic(model.view(), 16, 0);
    CHECK(automatic.n_threads() >= 1);
}

TEST_CASE("reference: a rewind forgets the positions after it", "[reference]") {
    TestModelView model(TinyShape{});
    model.add_random_weights(11);
    ReferenceForward ref(model.view(), 32, 2);
    const auto full = prefill_all(ref, kTokens);
    const size_t nv = ref.n_vocab();

    // Re-running the tail from position 6 gives the same logits as before.
    const std::vector<int32_t> tail(kTokens.begin() + 6, kTokens.end());
    const auto again = prefill_all(ref, tail, 6);
    CHECK(max_abs_diff(again, std::vector<float>(full.begin() + 6 * nv, full.end())) == 0.0f);
    CHECK(ref.n_cached() == kTokens.size());

    // Rewinding to 3 and taking another path equals a fresh run of that path.
    const std::vector<int32_t> other = {5, 6, 7, 8};
    const auto branched = prefill_all(ref, other, 3);
    CHECK(ref.n_cached() == 7);
    std::vector<int32_t> path(kTokens.begin(), kTokens.begin() + 3);
    path.insert(path.end(), other.begin(), other.end());
    ReferenceForward fresh(model.view(), 32, 2);
    const auto expected = prefill_all(fresh, path);
    CHECK(max_abs_diff(branched, std::vector<float>(expected.begin() + 3 * nv, expected.end())) == 0.0f);

    // Rewinding to 0 starts over.
    const auto restart = prefill_all(ref, kTokens, 0);
    CHECK(max_abs_diff(restart, full) == 0.0f);
}

TEST_CASE("reference: contract violations throw invalid_argument and change nothing", "[reference]") {
    TestModelView model(TinyShape{});
    model.add_random_weights(13);
    ReferenceForward ref(model.view(), 12, 2);
    std::vector<float> logits(12 * ref.n_vocab());
    ref.step(kTokens.data(), 4, 0, false, logits.data());
    REQUIRE(ref.n_cached() == 4);

    const int32_t good = 3;
    CHECK_THROWS_WITH(ref.step(&good, 1, 5, false, logits.data()), Catch::Contains("past the cached length 4"));
    CHECK_THROWS_WITH(ref.step(kTokens.data(), 9, 4, true, logits.data()), Catch::Contains("exceeds n_ctx 12"));
    const int32_t negative = -1, too_big = static_cast<int32_t>(ref.n_vocab());
    CHECK_THROWS_WITH(ref.step(&negative, 1, 4, false, logits.data()), Catch::Contains("outside the vocabulary"));
    CHECK_THROWS_WITH(ref.step(&too_big, 1, 4, false, logits.data()), Catch::Contains("token id 64"));
    // A bad token after a rewind point must not rewind the cache.
    const int32_t mixed[] = {3, 99};
    CHECK_THROWS_AS(ref.step(mixed, 2, 1, false, logits.data()), std::invalid_argument);
    CHECK_THROWS_AS(ref.step(&good, 0, 4, false, logits.data()), std::invalid_argument);
    CHECK_THROWS_AS(ref.step(nullptr, 1, 4, false, logits.data()), std::invalid_argument);
    CHECK_THROWS_AS(ref.step(&good, 1, 4, false, nullptr), std::invalid_argument);
    CHECK(ref.n_cached() == 4);

    // The session still continues where it was: the same as an uninterrupted run.
    ref.step(&kTokens[4], 1, 4, false, logits.data());
    std::vector<float> expected(ref.n_vocab());
    ReferenceForward fresh(model.view(), 12, 2);
    fresh.step(kTokens.data(), 5, 0, false, expected.data());
    CHECK(max_abs_diff(std::vector<float>(logits.begin(), logits.begin() + ref.n_vocab()), expected) == 0.0f);

    // Filling the context exactly is allowed.
    ref.step(kTokens.data(), 7, 5, false, logits.data());
    CHECK(ref.n_cached() == 12);
    CHECK_THROWS_AS(ReferenceForward(model.view(), 0, 1), std::invalid_argument);
}

TEST_CASE("reference: a malformed model view is refused with the tensor's name", "[reference]") {
    TinyShape shape;
    TestModelView no_bias(shape);
    no_bias.add_random_weights(1);  // llama tensors only: qwen2 needs biases
    apr_model_view qwen2 = no_bias.view();
    qwen2.arch = APR_ARCH_QWEN2;
    CHECK_THROWS_WITH(ReferenceForward(qwen2, 8, 1), Catch::Contains("missing tensor blk.0.attn_q.bias"));

    TestModelView wrong_shape(shape);
    wrong_shape.add_random_weights(2);
    apr_model_view view = wrong_shape.view();
    std::vector<apr_tensor_view> table(view.tensors, view.tensors + view.n_tensors);
    for (auto& t : table)
        if (std::string(t.name) == "blk.1.ffn_up.weight") t.ne[1] -= 1;
    view.tensors = table.data();
    CHECK_THROWS_WITH(ReferenceForward(view, 8, 1), Catch::Contains("blk.1.ffn_up.weight has shape [32, 47]"));

    view = wrong_shape.view();
    view.n_head_kv = 3;
    CHECK_THROWS_WITH(ReferenceForward(view, 8, 1), Catch::Contains("not a multiple of n_head_kv"));
    view = wrong_shape.view();
    view.arch = 77;
    CHECK_THROWS_WITH(ReferenceForward(view, 8, 1), Catch::Contains("unknown architecture"));
    view = wrong_shape.view();
    std::vector<apr_tensor_view> bad_type(view.tensors, view.tensors + view.n_tensors);
    bad_type[0].type = 99;
    view.tensors = bad_type.data();
    CHECK_THROWS_AS(ReferenceForward(view, 8, 1), std::invalid_argument);
}
