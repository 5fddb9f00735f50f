// The throughput tests llama-bench defines, run through a BackendSession:
//   ppP  — one prefill call of P tokens (logits of the last token only);
//   tgN  — N single-token decode steps after a prefill of DEPTH tokens (or of BOS alone);
// both optionally after DEPTH tokens already in the KV cache ("pp512 @ d4096"). Token ids are
// deterministic (no tokenizer). Only the measured calls are timed: the depth prefill and the
// BOS step before a tg run are not. One untimed warm-up run precedes the repetitions.
#pragma once

#include <apr/backend.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bench/sample_stats.hpp"
#include "registry/plugin_library.hpp"

namespace apr::bench {

struct ThroughputTest {
    enum class Kind { prompt, generation };
    Kind kind = Kind::prompt;
    uint32_t n_tokens = 0;  // P for pp, N for tg
    uint32_t depth = 0;     // tokens already in the KV cache

    // "pp512", "tg128", "pp512 @ d4096".
    std::string name() const;
    // The KV-cache positions the test needs.
    uint32_t context_needed() const;
};

// The tests of a command line, in llama-bench's order: for each depth, every pp, then every tg.
// A count of 0 is left out (-p 0 runs no prompt test).
std::vector<ThroughputTest> make_tests(const std::vector<uint32_t>& prompt_sizes,
                                       const std::vector<uint32_t>& gen_sizes, const std::vector<uint32_t>& depths);

struct ThroughputResult {
    std::vector<double> tokens_per_s;  // one per repetition
    SampleStats stats;
};

// Runs tests on one session, keeping the depth prefix in the cache between tests that share it.
class ThroughputRunner {
public:
    ThroughputRunner(BackendSession& session, const apr_model_view& model);

    // Warm-up, then `repetitions` timed runs. Throws RejectionError when the backend fails.
    ThroughputResult run(const ThroughputTest& test, uint32_t repetitions);

    // Seconds of one decode step: after BOS, the median of `steps` single-token steps.
    double decode_step_seconds(uint32_t steps);

private:
    double run_once(const ThroughputTest& test);  // seconds of the measured calls
    void ensure_prefix(uint32_t depth);
    int32_t token_at(uint32_t pos) const;

    BackendSession& session_;
    const apr_model_view& model_;
    std::vector<float> logits_;
    uint32_t prefix_ = 0;  // positions 0..prefix_-1 hold the deterministic sequence
};

}  // namespace apr::bench
