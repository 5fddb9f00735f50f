// Each clause of the gate's per-position verdict, on hand-made logit vectors.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "gate/logit_comparison.hpp"

using apr::compare_logits;
using apr::ParityCriteria;

namespace {
std::vector<float> ramp(size_t n) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = std::sin(0.37f * static_cast<float>(i)) * 3.0f;
    return v;
}
}  // namespace

TEST_CASE("gate clause: identical logits pass with cosine 1", "[gate]") {
    auto r = ramp(100);
    auto c = compare_logits(r, r, ParityCriteria{});
    REQUIRE(c.passed);
    REQUIRE(c.cosine == Approx(1.0).epsilon(1e-12));
    REQUIRE(c.max_abs_diff == 0.0);
}

TEST_CASE("gate clause: cosine below the threshold fails and names the numbers", "[gate]") {
    auto r = ramp(100);
    auto x = r;
    for (size_t i = 0; i < x.size(); i += 3) x[i] = -x[i];
    auto c = compare_logits(r, x, ParityCriteria{});
    REQUIRE_FALSE(c.passed);
    REQUIRE(c.cosine < 0.99);
    REQUIRE(c.failure.find("cosine") != std::string::npos);
    REQUIRE(c.failure.find("max abs diff") != std::string::npos);
    REQUIRE(c.failure.find("argmax reference") != std::string::npos);
}

TEST_CASE("gate clause: the threshold is configurable", "[gate]") {
    auto r = ramp(100);
    r[0] = 10.0f;  // a clear winner
    auto x = r;
    x[5] += 2.0f;  // cosine drops a little, argmax unchanged
    auto strict = compare_logits(r, x, ParityCriteria{0.99999, 0.15});
    auto loose = compare_logits(r, x, ParityCriteria{0.9, 0.15});
    REQUIRE_FALSE(strict.passed);
    REQUIRE(loose.passed);
}

TEST_CASE("gate clause: a different argmax fails unless the reference's top two are a near-tie", "[gate]") {
    std::vector<float> r(50, 0.0f);
    r[10] = 10.0f;
    r[20] = 5.0f;  // gap 0.5: no near-tie
    auto x = r;
    x[10] = 5.0f;
    x[20] = 10.0f;
    ParityCriteria loose{0.0, 0.15};
    REQUIRE_FALSE(compare_logits(r, x, loose).passed);

    r[20] = 9.0f;  // gap 0.1 <= 0.15: near-tie, the second may win
    x = r;
    x[10] = 8.9f;
    auto c = compare_logits(r, x, loose);
    REQUIRE(c.near_tie);
    REQUIRE(c.candidate_argmax == 20);
    REQUIRE(c.passed);

    x = r;  // near-tie, but the candidate picks a third token
    x[30] = 11.0f;
    REQUIRE_FALSE(compare_logits(r, x, loose).passed);
}

TEST_CASE("gate clause: NaN or Inf anywhere fails", "[gate]") {
    auto r = ramp(64);
    auto x = r;
    x[7] = NAN;
    auto c = compare_logits(r, x, ParityCriteria{});
    REQUIRE_FALSE(c.passed);
    REQUIRE(c.failure.find("NaN") != std::string::npos);
    x = r;
    x[9] = INFINITY;
    c = compare_logits(r, x, ParityCriteria{});
    REQUIRE_FALSE(c.passed);
    REQUIRE(c.failure.find("Inf") != std::string::npos);
}

TEST_CASE("gate clause: cosine is summed in f64 (no loss on long vectors)", "[gate]") {
    std::vector<float> r(200000, 1.0f), x(200000, 1.0f);
    x[0] = 1.0001f;
    auto c = compare_logits(r, x, ParityCriteria{});
    REQUIRE(c.cosine > 0.9999999);
    REQUIRE(c.cosine <= 1.0 + 1e-12);
}
