#include "reference/reference_forward.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "model/tensor_codec.hpp"
#include "reference/reference_kernels.hpp"
#include "reference/reference_weights.hpp"
#include "reference/row_thread_pool.hpp"

namespace apr {

using reference::dot_f64;
using reference::MatrixRef;

struct ReferenceForward::Impl {
    reference::ModelWeights w;
    uint32_t n_ctx = 0;
    uint32_t n_cached = 0;
    // KV cache, f32, per layer: [n_ctx][n_head_kv * head_dim] for keys (after RoPE) and values.
    std::vector<std::vector<float>> k_cache, v_cache;
    reference::RowThreadPool pool;

    // Per-thread scratch: one dequantized weight row, one head's attention weights and output.
    struct Scratch {
        std::vector<float> row;
        std::vector<double> scores;
        std::vector<double> head_out;
    };
    std::vector<Scratch> scratch;
    std::vector<float> rounded;  // the current matrix product's activations, rounded for its weight type

    Impl(const apr_model_view& model, uint32_t ctx, unsigned threads)
        : w(reference::resolve_model_weights(model)), n_ctx(ctx), pool(threads) {
        if (n_ctx == 0) throw std::invalid_argument("reference forward: n_ctx must be at least 1");
        const auto& hp = w.hp;
        const size_t kv_dim = size_t{hp.n_head_kv} * hp.head_dim;
        k_cache.assign(hp.n_layer, std::vector<float>(size_t{n_ctx} * kv_dim));
        v_cache.assign(hp.n_layer, std::vector<float>(size_t{n_ctx} * kv_dim));
        const size_t widest_row = std::max<size_t>({hp.n_embd, hp.n_ff, size_t{hp.n_head} * hp.head_dim});
        scratch.resize(pool.size());
        for (auto& s : scratch) {
            s.row.resize(widest_row);
            s.scores.resize(n_ctx);
            s.head_out.resize(hp.head_dim);
        }
    }

    // y[t][r] = W.row(r) · x[t] (+ bias[r]) for n_tokens activations x of W.cols floats, giving
    // n_tokens outputs of W.rows floats. The activations are first rounded as llama.cpp rounds
    // them for this weight type (round_activation_for). Rows are split over the threads; each
    // weight row is dequantized once and used for every token.
    void matmul(const MatrixRef& W, const float* x_in, size_t n_tokens, float* y, const std::vector<float>& bias) {
        const size_t cols = W.cols, rows = W.rows;
        rounded.resize(n_tokens * cols);
        for (size_t t = 0; t < n_tokens; ++t)
            reference::round_activation_for(W.tensor->type, x_in + t * cols, &rounded[t * cols], cols);
        const float* x = rounded.data();
        pool.parallel_for(rows, [&](size_t begin, size_t end, unsigned worker) {
            float* row = scratch[worker].row.data();
            for (size_t r = begin; r < end; ++r) {
                dequantize_row(W.tensor->type, W.row(r), row, static_cast<int64_t>(cols));
                const double b = bias.empty() ? 0.0 : double(bias[r]);
                for (size_t t = 0; t < n_tokens; ++t) y[t * rows + r] = float(dot_f64(row, x + t * cols, cols) + b);
            }
        });
    }

    // Causal GQA attention of n_tokens queries at positions pos.. over the layer's cache
    // (which already holds their own keys and values). q: [n_tokens][n_head*head_dim], out likewise.
    void attention(uint32_t layer, const float* q, size_t n_tokens, uint32_t pos, float* out) {
        const auto& hp = w.hp;
        const size_t head_dim = hp.head_dim, q_dim = size_t{hp.n_head} * head_dim;
        const size_t kv_dim = size_t{hp.n_head_kv} * head_dim;
        const uint32_t group = hp.n_head / hp.n_head_kv;
        const double scale = 1.0 / std::sqrt(double(head_dim));
        const float* keys = k_cache[layer].data();
        const float* values = v_cache[layer].data();
        pool.parallel_for(n_tokens * hp.n_head, [&](size_t begin, size_t end, unsigned worker) {
            double* scores = scratch[worker].scores.data();
            double* acc = scratch[worker].head_out.data();
            for (size_t item = begin; item < end; ++item) {
                const size_t t = item / hp.n_head, h = item % hp.n_head;
                const size_t kv_offset = (h / group) * head_dim;
                const float* qh = q + t * q_dim + h * head_dim;
                const size_t n_keys = size_t{pos} + t + 1;  // causal: positions 0 .. pos+t
                double max_score = -INFINITY;
                for (size_t j = 0; j < n_keys; ++j) {
                    // Scores are f32 values like every other activation.
                    scores[j] = float(dot_f64(qh, keys + j * kv_dim + kv_offset, head_dim) * scale);
                    max_score = std::max(max_score, scores[j]);
                }
                double sum = 0.0;
                for (size_t j = 0; j < n_keys; ++j) {
                    scores[j] = std::exp(scores[j] - max_score);
                    sum += scores[j];
                }
                std::fill(acc, acc + head_dim, 0.0);
                for (size_t j = 0; j < n_keys; ++j) {
                    const double p = scores[j] / sum;
                    const float* vj = values + j * kv_dim + kv_offset;
                    for (size_t d = 0; d < head_dim; ++d) acc[d] += p * double(vj[d]);
                }
                float* oh = out + t * q_dim + h * head_dim;
                for (size_t d = 0; d < head_dim; ++d) oh[d] = float(acc[d]);
            }
        });
    }

    void check_step(const int32_t* tokens, uint32_t n_tokens, uint32_t pos, const float* logits) const {
        if (n_tokens == 0) throw std::invalid_argument("reference step: n_tokens is 0 (a step runs at least one token)");
        if (!tokens) throw std::invalid_argument("reference step: tokens is null");
        if (!logits) throw std::invalid_argument("reference step: logits is null");
        if (pos > n_cached)
            throw std::invalid_argument("reference step: pos " + std::to_string(pos) + " is past the cached length " +
                                        std::to_string(n_cached) + " (positions must be contiguous)");
        if (uint64_t{pos} + n_tokens > n_ctx)
            throw std::invalid_argument("reference step: pos " + std::to_string(pos) + " + n_tokens " +
                                        std::to_string(n_tokens) + " exceeds n_ctx " + std::to_string(n_ctx));
        for (uint32_t i = 0; i < n_tokens; ++i)
            if (tokens[i] < 0 || uint32_t(tokens[i]) >= w.hp.n_vocab)
                throw std::invalid_argument("reference step: token id " + std::to_string(tokens[i]) + " at index " +
                                            std::to_string(i) + " is outside the vocabulary [0, " +
                                            std::to_string(w.hp.n_vocab) + ")");
    }

    void step(const int32_t* tokens, uint32_t n_tokens, uint32_t pos, bool all_logits, float* logits) {
        check_step(tokens, n_tokens, pos, logits);
        n_cached = pos;  // rewind: everything from pos on is forgotten

        const auto& hp = w.hp;
        const size_t n = n_tokens, n_embd = hp.n_embd, head_dim = hp.head_dim;
        const size_t q_dim = size_t{hp.n_head} * head_dim, kv_dim = size_t{hp.n_head_kv} * head_dim;
        std::vector<float> x(n * n_embd), h(n * n_embd), o(n * n_embd);
        std::vector<float> q(n * q_dim), k(n * kv_dim), v(n * kv_dim), att(n * q_dim);
        std::vector<float> gate(n * hp.n_ff), up(n * hp.n_ff);

        for (size_t t = 0; t < n; ++t)
            dequantize_row(w.token_embd.tensor->type, w.token_embd.row(uint64_t(tokens[t])), &x[t * n_embd],
                           static_cast<int64_t>(n_embd));

        const float* divisors = w.rope_freqs.empty() ? nullptr : w.rope_freqs.data();
        for (uint32_t l = 0; l < hp.n_layer; ++l) {
            const reference::LayerWeights& L = w.layers[l];
            for (size_t t = 0; t < n; ++t)
                reference::rms_norm(&x[t * n_embd], L.attn_norm.data(), &h[t * n_embd], n_embd, hp.rms_norm_eps);
            matmul(L.wq, h.data(), n, q.data(), L.bq);
            matmul(L.wk, h.data(), n, k.data(), L.bk);
            matmul(L.wv, h.data(), n, v.data(), L.bv);
            for (size_t t = 0; t < n; ++t) {
                const uint32_t p = pos + uint32_t(t);
                for (size_t hq = 0; hq < hp.n_head; ++hq) {
                    float* head = &q[t * q_dim + hq * head_dim];
                    if (!L.q_norm.empty()) reference::rms_norm(head, L.q_norm.data(), head, head_dim, hp.rms_norm_eps);
                    reference::apply_rope(head, hp.n_rot, hp.rope_type, p, hp.rope_freq_base, hp.rope_freq_scale,
                                          divisors);
                }
                for (size_t hk = 0; hk < hp.n_head_kv; ++hk) {
                    float* head = &k[t * kv_dim + hk * head_dim];
                    if (!L.k_norm.empty()) reference::rms_norm(head, L.k_norm.data(), head, head_dim, hp.rms_norm_eps);
                    reference::apply_rope(head, hp.n_rot, hp.rope_type, p, hp.rope_freq_base, hp.rope_freq_scale,
                                          divisors);
                }
                std::copy_n(&k[t * kv_dim], kv_dim, &k_cache[l][size_t{p} * kv_dim]);
                std::copy_n(&v[t * kv_dim], kv_dim, &v_cache[l][size_t{p} * kv_dim]);
            }
            attention(l, q.data(), n, pos, att.data());
            matmul(L.wo, att.data(), n, o.data(), {});
            for (size_t i = 0; i < n * n_embd; ++i) x[i] += o[i];

            for (size_t t = 0; t < n; ++t)
                reference::rms_norm(&x[t * n_embd], L.ffn_norm.data(), &h[t * n_embd], n_embd, hp.rms_norm_eps);
            matmul(L.w_gate, h.data(), n, gate.data(), {});
            matmul(L.w_up, h.data(), n, up.data(), {});
            reference::swiglu(gate.data(), up.data(), n * hp.n_ff);
            matmul(L.w_down, gate.data(), n, o.data(), {});
            for (size_t i = 0; i < n * n_embd; ++i) x[i] += o[i];
        }
        n_cached = pos + n_tokens;

        // Only the tokens whose logits are wanted go through the final norm and output matrix.
        const size_t first = all_logits ? 0 : n - 1;
        const size_t n_out = n - first;
        for (size_t t = 0; t < n_out; ++t)
            reference::rms_norm(&x[(first + t) * n_embd], w.output_norm.data(), &h[t * n_embd], n_embd,
                                hp.rms_norm_eps);
        matmul(w.output, h.data(), n_out, logits, {});
    }
};

ReferenceForward::ReferenceForward(const apr_model_view& model, uint32_t n_ctx, unsigned n_threads)
    : impl_(std::make_unique<Impl>(model, n_ctx, n_threads)) {}

ReferenceForward::~ReferenceForward() = default;

void ReferenceForward::step(const int32_t* tokens, uint32_t n_tokens, uint32_t pos, bool all_logits, float* logits) {
    impl_->step(tokens, n_tokens, pos, all_logits, logits);
}

uint32_t ReferenceForward::n_vocab() const { return impl_->w.hp.n_vocab; }
uint32_t ReferenceForward::n_ctx() const { return impl_->n_ctx; }
uint32_t ReferenceForward::n_cached() const { return impl_->n_cached; }
unsigned ReferenceForward::n_threads() const { return impl_->pool.size(); }

}  // namespace apr

