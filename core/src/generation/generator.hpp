// The generation loop: prefill the prompt, then sample and decode one token at a time,
// streaming text as it completes. When the serving backend fails mid-generation (an error
// status, or non-finite logits), it is rejected with the contract's line (stage step), the
// next backend is opened and gated, the prompt and every token generated so far are replayed
// on it, and generation continues: nothing already streamed is repeated or lost.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "registry/backend_registry.hpp"
#include "sampler/sampler.hpp"
#include "tokenizer/tokenizer.hpp"

namespace apr {

struct GenerationStats {
    uint32_t prompt_tokens = 0;
    uint32_t generated_tokens = 0;
    double prompt_seconds = 0.0;     // first prefill only
    double generation_seconds = 0.0; // decode steps (replays after a failover included)
    uint32_t failovers = 0;
    bool stopped_at_eog = false;
};

class Generator {
public:
    // `on_backend` is called with every backend that starts serving (the first one and each
    // failover), so the caller can print its Backend line.
    Generator(BackendSelector& selector, ServingBackend serving, const Tokenizer& tokenizer,
              std::function<void(const ServingBackend&)> on_backend);

    // Generates up to n_predict tokens after `prompt`, calling `emit` with each complete piece
    // of text. Throws RejectionError (the last failure) when no backend is left to fail over to.
    GenerationStats run(const std::vector<int32_t>& prompt, uint32_t n_predict, Sampler& sampler,
                        const std::function<void(std::string_view)>& emit);

    const ServingBackend& serving() const { return serving_; }

private:
    // Steps the serving backend; on failure fails over and replays `history` + `tokens`.
    void step_with_failover(const std::vector<int32_t>& history, const int32_t* tokens, uint32_t n, uint32_t pos,
                            float* logits, GenerationStats& stats);

    BackendSelector& selector_;
    ServingBackend serving_;
    const Tokenizer& tokenizer_;
    std::function<void(const ServingBackend&)> on_backend_;
};

}  // namespace apr
