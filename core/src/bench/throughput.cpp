#include "bench/throughput.hpp"

#include <algorithm>
#include <chrono>

namespace apr::bench {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

std::string ThroughputTest::name() const {
    std::string n = (kind == Kind::prompt ? "pp" : "tg") + std::to_string(n_tokens);
    if (depth > 0) n += " @ d" + std::to_string(depth);
    return n;
}

uint32_t ThroughputTest::context_needed() const {
    // A tg run at depth 0 starts after BOS.
    return (kind == Kind::generation ? std::max<uint32_t>(depth, 1) : depth) + n_tokens;
}

std::vector<ThroughputTest> make_tests(const std::vector<uint32_t>& prompt_sizes,
                                       const std::vector<uint32_t>& gen_sizes, const std::vector<uint32_t>& depths) {
    std::vector<ThroughputTest> tests;
    for (uint32_t d : depths) {
        for (uint32_t p : prompt_sizes)
            if (p > 0) tests.push_back({ThroughputTest::Kind::prompt, p, d});
        for (uint32_t n : gen_sizes)
            if (n > 0) tests.push_back({ThroughputTest::Kind::generation, n, d});
    }
    return tests;
}

ThroughputRunner::ThroughputRunner(BackendSession& session, const apr_model_view& model)
    : session_(session), model_(model), logits_(model.n_vocab) {}

int32_t ThroughputRunner::token_at(uint32_t pos) const {
    const uint32_t n_vocab = model_.n_vocab;
    if (pos == 0)
        return model_.bos_token_id >= 0 && static_cast<uint32_t>(model_.bos_token_id) < n_vocab ? model_.bos_token_id : 0;
    // A fixed scramble of the position: the same ids on every run and machine.
    uint64_t x = pos * 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9ull;
    return static_cast<int32_t>((x ^ (x >> 29)) % n_vocab);
}

void ThroughputRunner::ensure_prefix(uint32_t depth) {
    if (prefix_ == depth) return;
    if (depth == 0) {
        prefix_ = 0;
        return;
    }
    std::vector<int32_t> tokens(depth);
    for (uint32_t i = 0; i < depth; ++i) tokens[i] = token_at(i);
    session_.step(tokens.data(), depth, 0, false, logits_.data());
    prefix_ = depth;
}

double ThroughputRunner::run_once(const ThroughputTest& test) {
    ensure_prefix(test.depth);
    if (test.kind == ThroughputTest::Kind::prompt) {
        std::vector<int32_t> tokens(test.n_tokens);
        for (uint32_t i = 0; i < test.n_tokens; ++i) tokens[i] = token_at(test.depth + i);
        const auto t0 = Clock::now();
        session_.step(tokens.data(), test.n_tokens, test.depth, false, logits_.data());
        return seconds_since(t0);
    }
    uint32_t start = test.depth;
    if (start == 0) {  // BOS first, untimed; it rewinds the cache to empty
        const int32_t bos = token_at(0);
        session_.step(&bos, 1, 0, false, logits_.data());
        prefix_ = 0;
        start = 1;
    }
    const auto t0 = Clock::now();
    for (uint32_t i = 0; i < test.n_tokens; ++i) {
        const int32_t token = token_at(start + i);
        session_.step(&token, 1, start + i, false, logits_.data());
    }
    return seconds_since(t0);
}

ThroughputResult ThroughputRunner::run(const ThroughputTest& test, uint32_t repetitions) {
    run_once(test);  // warm-up
    ThroughputResult result;
    for (uint32_t r = 0; r < repetitions; ++r) {
        const double s = run_once(test);
        result.tokens_per_s.push_back(s > 0 ? test.n_tokens / s : 0.0);
    }
    result.stats = sample_stats(result.tokens_per_s);
    return result;
}

double ThroughputRunner::decode_step_seconds(uint32_t steps) {
    steps = std::max<uint32_t>(steps, 1);
    const int32_t bos = token_at(0);
    session_.step(&bos, 1, 0, false, logits_.data());
    prefix_ = 0;
    std::vector<double> times;
    for (uint32_t i = 1; i <= steps; ++i) {
        const int32_t token = token_at(i);
        const auto t0 = Clock::now();
        session_.step(&token, 1, i, false, logits_.data());
        times.push_back(seconds_since(t0));
    }
    std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
    return times[times.size() / 2];
}

}  // namespace apr::bench
