// One open model: the bound weights (read in place), the KV cache, the scratch buffers and the
// thread pool, and the forward pass over a run of tokens (backend.h's step semantics).
#pragma once

#include <apr/backend.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "block_formats.hpp"
#include "kernels.hpp"
#include "kv_cache.hpp"
#include "model_weights.hpp"
#include "thread_pool.hpp"
#include "weight_repack.hpp"

namespace apr_cpu {

class Session {
public:
    // Throws PluginError (unsupported model, bad config) or std::bad_alloc.
    Session(const apr_model_view& view, const apr_session_config& config);

    // backend.h's apr_backend_step. Throws PluginError(APR_ERR_INVALID_ARGUMENT) on contract
    // violations, before anything changes.
    void step(const int32_t* tokens, uint32_t n_tokens, uint32_t pos, bool all_logits, float* logits);

    const KernelTable& kernels() const { return kernels_; }

private:
    // Runs up to kMaxBatch tokens at positions pos.. ; writes logits for each token (logits_all)
    // or only the last one (when `want_last`).
    void forward(const int32_t* tokens, int64_t n, int64_t pos, float* logits, bool logits_all, bool want_last);
    void attention(int64_t layer, int64_t n, int64_t pos);
    // Converts n rows of `width` floats (stride `width`) into the activation buffer of `kind`.
    const uint8_t* convert(ActKind kind, const float* x, int64_t n, int64_t width);
    // out_j = W_j x for several matrices sharing one converted input, in one parallel pass.
    struct Product {
        const Matrix* m;
        float* out;  // n rows of m->n_out
    };
    void multiply(const Product* products, int n_products, const float* x, int64_t n);
    void rms_norm(const float* x, const float* weight, float* out, int64_t n_rows, int64_t width) const;
    void rope(float* v, int64_t n_heads, int64_t pos) const;

    static constexpr int64_t kMaxBatch = 64;

    ModelWeights w_;
    const KernelTable& kernels_;
    ThreadPool pool_;
    GroupedWeights grouped_;  // regrouped Q4_0 / Q8_0 copies, pointed to by w_'s matrices
    int64_t n_ctx_;
    int64_t n_cached_ = 0;
    std::vector<float> inv_freq_;  // per rotated pair: rope_freq_scale * base^(-2i/n_rot) / rope_freqs[i]

    KvCache kv_;
    // Scratch for kMaxBatch tokens.
    std::vector<float> x_, h_, q_, k_, v_, attn_, gate_, up_, proj_;
    std::vector<float> scores_;  // per thread, n_ctx
    std::array<std::vector<uint8_t>, kActKindCount> act_;  // converted activations per kind
    std::array<int64_t, kActKindCount> act_width_{};       // widest input of that kind
};

}  // namespace apr_cpu
