// ReferenceForward: the core's own, plainly written transformer forward pass — the oracle the
// parity gate trusts. f32 values, f64 accumulation of every dot product and norm, weights
// dequantized row by row as they are used, work split over threads by output rows.
// It shares no code with any plugin.
#pragma once

#include <apr/backend.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace apr {

class ReferenceForward {
public:
    // `model` must outlive this object. n_threads 0 = hardware concurrency. Checks the view
    // (architecture, shapes, tensor types) and throws std::invalid_argument naming the problem.
    ReferenceForward(const apr_model_view& model, uint32_t n_ctx, unsigned n_threads = 0);
    ~ReferenceForward();

    // Exactly the semantics of apr_backend_step (rewind when pos < cached length, logits of the
    // last token or of all). Throws std::invalid_argument on contract violations.
    void step(const int32_t* tokens, uint32_t n_tokens, uint32_t pos, bool all_logits, float* logits);

    uint32_t n_vocab() const;
    uint32_t n_ctx() const;
    // Positions held in the KV cache now (the `pos` a continuing step would pass).
    uint32_t n_cached() const;
    // Threads the forward runs on (the caller's thread included).
    unsigned n_threads() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace apr
