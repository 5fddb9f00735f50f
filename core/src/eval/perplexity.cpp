#include "eval/perplexity.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace apr {

PerplexityResult compute_perplexity(const std::vector<int32_t>& tokens, uint32_t n_ctx, int32_t bos, uint32_t n_vocab,
                                    uint32_t max_chunks, const PerplexityStepFn& step,
                                    const PerplexityProgressFn& progress) {
    if (n_ctx < 4) throw std::invalid_argument("the context must hold at least 4 tokens (got " + std::to_string(n_ctx) + ")");
    uint32_t n_chunks = static_cast<uint32_t>(tokens.size() / n_ctx);
    if (n_chunks == 0)
        throw std::invalid_argument("the text has " + std::to_string(tokens.size()) +
                                    " tokens, fewer than one chunk of " + std::to_string(n_ctx));
    if (max_chunks) n_chunks = std::min(n_chunks, max_chunks);

    std::vector<int32_t> chunk(n_ctx);
    std::vector<float> logits(size_t(n_ctx) * n_vocab);
    const uint32_t first = n_ctx / 2;
    double nll = 0.0;
    uint64_t count = 0;
    for (uint32_t c = 0; c < n_chunks; ++c) {
        std::copy_n(tokens.begin() + size_t(c) * n_ctx, n_ctx, chunk.begin());
        if (bos >= 0) chunk[0] = bos;
        step(chunk.data(), n_ctx, logits.data());
        for (uint32_t j = first; j + 1 < n_ctx; ++j) {
            const float* row = &logits[size_t(j) * n_vocab];
            double max = row[0];
            for (uint32_t v = 1; v < n_vocab; ++v) max = std::max(max, double(row[v]));
            double sum = 0.0;
            for (uint32_t v = 0; v < n_vocab; ++v) sum += std::exp(double(row[v]) - max);
            const double logp = double(row[chunk[j + 1]]) - max - std::log(sum);
            if (!std::isfinite(logp))
                throw std::runtime_error("chunk " + std::to_string(c) + ", position " + std::to_string(j) +
                                         ": the logits are not finite");
            nll -= logp;
            ++count;
        }
        if (progress) progress(c, std::exp(nll / double(count)));
    }
    PerplexityResult r;
    r.chunks = n_chunks;
    r.scored_tokens = count;
    r.mean_nll = nll / double(count);
    r.ppl = std::exp(r.mean_nll);
    return r;
}

}  // namespace apr
