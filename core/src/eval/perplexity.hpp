// Perplexity of a model on a text, computed as llama.cpp's llama-perplexity computes it, so the
// figures compare with that tool's and with the training script of the default model
// (tools/train-default-model/train.py, function perplexity):
//   the text's tokens (BOS in front when the vocabulary adds one) are cut into chunks of n_ctx;
//   each chunk's first token is replaced by BOS and the chunk is run from position 0; the tokens
//   of the chunk's second half are scored: the logits at positions n_ctx/2 .. n_ctx-2 against
//   the token that follows. ppl = exp(mean negative log-likelihood), accumulated in f64.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace apr {

struct PerplexityResult {
    double ppl = 0.0;
    double mean_nll = 0.0;      // nats per scored token
    uint32_t chunks = 0;
    uint64_t scored_tokens = 0;
};

// Runs n tokens from position 0 and writes n x n_vocab logits (apr_backend_step with all logits).
using PerplexityStepFn = std::function<void(const int32_t* tokens, uint32_t n, float* logits)>;
// Called after each chunk with the chunk index (0-based) and the running perplexity.
using PerplexityProgressFn = std::function<void(uint32_t chunk, double ppl_so_far)>;

// Throws std::invalid_argument when n_ctx < 4 or the text has fewer than n_ctx tokens.
// max_chunks 0 = every whole chunk.
PerplexityResult compute_perplexity(const std::vector<int32_t>& tokens, uint32_t n_ctx, int32_t bos, uint32_t n_vocab,
                                    uint32_t max_chunks, const PerplexityStepFn& step,
                                    const PerplexityProgressFn& progress = {});

}  // namespace apr
