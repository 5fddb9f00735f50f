// Sampler: picks the next token from a logit vector, the way llama.cpp's default chain does:
// repetition penalty -> top-k -> top-p -> min-p -> temperature -> a seeded draw.
// temperature <= 0 means greedy (argmax after the penalty; the lowest id wins ties).
// The same parameters, seed, logits and accepted tokens give the same choices on every run.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <stdexcept>
#include <vector>

namespace apr {

struct SamplerParams {
    float temperature = 0.8f;
    int32_t top_k = 40;           // <= 0: no top-k cut
    float top_p = 0.95f;          // >= 1: no nucleus cut
    float min_p = 0.05f;          // <= 0: no min-p cut
    float repeat_penalty = 1.0f;  // 1: off. Seen tokens: positive logits / penalty, negative * penalty
    int32_t repeat_last_n = 64;   // how many accepted tokens the penalty looks back; 0 off, < 0 all
    uint64_t seed = 0x5EED5EED5EED5EEDull;
};

class Sampler {
public:
    // Throws std::invalid_argument for a zero vocabulary, a negative penalty, top_p or min_p
    // outside [0, 1] or NaN parameters.
    Sampler(SamplerParams params, uint32_t n_vocab);

    // Picks a token id from `logits` (one per vocabulary entry). NaN logits are never picked.
    // Throws std::invalid_argument when logits.size() != n_vocab or every logit is NaN or -inf.
    // Does not record the choice: call accept() with the token actually used.
    int32_t sample(std::span<const float> logits);

    // Records a token of the context (prompt or generated) for the repetition penalty.
    void accept(int32_t id);

    const SamplerParams& params() const { return params_; }

private:
    struct Candidate {
        int32_t id;
        float logit;
    };

    void apply_repeat_penalty(std::vector<Candidate>& candidates) const;
    double uniform01();

    SamplerParams params_;
    uint32_t n_vocab_;
    std::mt19937_64 rng_;
    std::deque<int32_t> recent_;  // accepted tokens, oldest first, at most repeat_last_n
};

}  // namespace apr
