// The sampler's choices: greedy, the cuts (top-k, top-p, min-p), the seeded draw and the
// repetition penalty.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "sampler/sampler.hpp"

using namespace apr;

namespace {

SamplerParams plain(float temperature = 1.0f) {
    SamplerParams p;
    p.temperature = temperature;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.seed = 1234;
    return p;
}

std::vector<float> random_logits(std::mt19937& rng, size_t n) {
    std::normal_distribution<float> dist(0.0f, 3.0f);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

int32_t argmax(const std::vector<float>& v) {
    return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());  // first of equals
}

std::vector<float> logits_of(const std::vector<double>& probabilities) {
    std::vector<float> v;
    for (double p : probabilities) v.push_back(static_cast<float>(std::log(p)));
    return v;
}

// How often each id is drawn in `n` draws.
std::vector<double> frequencies(Sampler& s, const std::vector<float>& logits, int n) {
    std::vector<double> f(logits.size(), 0.0);
    for (int i = 0; i < n; ++i) f[static_cast<size_t>(s.sample(logits))] += 1.0 / n;
    return f;
}

}  // namespace

TEST_CASE("temperature 0 is greedy: the argmax, the lowest id on ties", "[sampler]") {
    std::mt19937 rng(1);
    Sampler s(plain(0.0f), 100);
    for (int i = 0; i < 50; ++i) {
        const auto logits = random_logits(rng, 100);
        CHECK(s.sample(logits) == argmax(logits));
    }
    std::vector<float> tie(100, 0.0f);
    tie[17] = tie[42] = 5.0f;
    CHECK(s.sample(tie) == 17);
}

TEST_CASE("top-k 1 is greedy at any temperature", "[sampler]") {
    std::mt19937 rng(2);
    for (uint64_t seed = 0; seed < 20; ++seed) {
        SamplerParams p = plain(1.5f);
        p.top_k = 1;
        p.seed = seed;
        Sampler s(p, 64);
        const auto logits = random_logits(rng, 64);
        CHECK(s.sample(logits) == argmax(logits));
    }
}

TEST_CASE("the same seed gives the same tokens - another seed other tokens", "[sampler]") {
    std::mt19937 rng(3);
    std::vector<std::vector<float>> steps;
    for (int i = 0; i < 40; ++i) steps.push_back(random_logits(rng, 50));
    auto run = [&](uint64_t seed) {
        SamplerParams p;  // the defaults: top-k 40, top-p 0.95, min-p 0.05, temperature 0.8
        p.seed = seed;
        p.temperature = 2.0f;  // flat enough that the draws matter
        Sampler s(p, 50);
        std::vector<int32_t> out;
        for (const auto& l : steps) {
            out.push_back(s.sample(l));
            s.accept(out.back());
        }
        return out;
    };
    CHECK(run(7) == run(7));
    CHECK(run(7) != run(8));
}

TEST_CASE("draws follow softmax(logits / temperature)", "[sampler]") {
    const std::vector<float> logits = {1.0f, 0.0f, -1.0f};
    Sampler s(plain(0.5f), 3);
    const auto f = frequencies(s, logits, 40000);
    double z = 0;
    for (float l : logits) z += std::exp(l / 0.5);
    for (size_t i = 0; i < logits.size(); ++i) CHECK(f[i] == Approx(std::exp(logits[i] / 0.5) / z).margin(0.01));
}

TEST_CASE("min-p drops tokens below min_p times the best probability", "[sampler]") {
    // p = 0.50, 0.30, 0.17, 0.03; min_p 0.1 -> floor 0.05: the last token goes.
    SamplerParams p = plain();
    p.min_p = 0.1f;
    Sampler s(p, 4);
    const auto f = frequencies(s, logits_of({0.50, 0.30, 0.17, 0.03}), 40000);
    CHECK(f[3] == 0.0);
    CHECK(f[0] == Approx(0.50 / 0.97).margin(0.015));
    CHECK(f[1] == Approx(0.30 / 0.97).margin(0.015));
    CHECK(f[2] == Approx(0.17 / 0.97).margin(0.015));
}

TEST_CASE("top-p keeps the smallest set of best tokens reaching top_p", "[sampler]") {
    // p = 0.5, 0.3, 0.15, 0.05; top_p 0.75: 0.5 < 0.75 <= 0.8, so the first two stay.
    SamplerParams p = plain();
    p.top_p = 0.75f;
    Sampler s(p, 4);
    const auto f = frequencies(s, logits_of({0.5, 0.3, 0.15, 0.05}), 40000);
    CHECK(f[2] == 0.0);
    CHECK(f[3] == 0.0);
    CHECK(f[0] == Approx(0.5 / 0.8).margin(0.015));
    CHECK(f[1] == Approx(0.3 / 0.8).margin(0.015));
}

TEST_CASE("top-k keeps the k best tokens", "[sampler]") {
    SamplerParams p = plain();
    p.top_k = 2;
    Sampler s(p, 4);
    const auto f = frequencies(s, logits_of({0.1, 0.4, 0.2, 0.3}), 20000);
    CHECK(f[0] == 0.0);
    CHECK(f[2] == 0.0);
    CHECK(f[1] == Approx(0.4 / 0.7).margin(0.015));
}

TEST_CASE("repetition penalty pushes recently seen tokens down", "[sampler]") {
    SamplerParams p = plain(0.0f);
    p.repeat_penalty = 1.5f;
    p.repeat_last_n = 2;
    {
        Sampler s(p, 3);
        const std::vector<float> logits = {2.0f, 1.9f, -1.0f};
        CHECK(s.sample(logits) == 0);
        s.accept(0);
        CHECK(s.sample(logits) == 1);  // 2.0 / 1.5 < 1.9
        // Out of the window of 2 after two other tokens: no longer penalised.
        s.accept(2);
        s.accept(2);
        CHECK(s.sample(logits) == 0);
    }
    {
        // Negative logits are multiplied, so a seen token still becomes less likely.
        Sampler s(p, 2);
        const std::vector<float> logits = {-1.0f, -1.2f};
        s.accept(0);
        CHECK(s.sample(logits) == 1);  // -1.5 < -1.2
    }
    {
        p.repeat_penalty = 1.0f;  // off
        Sampler s(p, 3);
        s.accept(0);
        CHECK(s.sample(std::vector<float>{2.0f, 1.9f, -1.0f}) == 0);
    }
}

TEST_CASE("sampler rejects bad input", "[sampler]") {
    Sampler s(plain(), 4);
    CHECK_THROWS_AS(s.sample(std::vector<float>{1.0f, 2.0f}), std::invalid_argument);
    CHECK_THROWS_AS(s.sample(std::vector<float>(4, std::nanf(""))), std::invalid_argument);
    CHECK_THROWS_AS(s.sample(std::vector<float>(4, -INFINITY)), std::invalid_argument);
    std::vector<float> one_nan = {std::nanf(""), 1.0f, 0.0f, 0.5f};
    Sampler g(plain(0.0f), 4);
    CHECK(g.sample(one_nan) == 1);
    CHECK_THROWS_AS(Sampler(plain(), 0), std::invalid_argument);
    SamplerParams bad = plain();
    bad.top_p = 1.5f;
    CHECK_THROWS_AS(Sampler(bad, 4), std::invalid_argument);
}
