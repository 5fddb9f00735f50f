#include "session.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>

#include "activation_quant.hpp"
#include "cpu_features.hpp"
#include "plugin_error.hpp"

namespace apr_cpu {
namespace {

unsigned choose_threads(const apr_session_config& config) {
    unsigned n = 0;
    if (config.struct_size >= offsetof(apr_session_config, n_threads) + sizeof(config.n_threads)) n = config.n_threads;
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
    return std::min(n, 256u);
}

const KernelTable& kernels_or_throw() {
    try {
        return select_kernels();
    } catch (const std::runtime_error& e) {
        throw PluginError(APR_ERR_NO_DEVICE, e.what());
    }
}

int64_t checked_n_ctx(const apr_session_config& config) {
    if (config.struct_size < offsetof(apr_session_config, n_ctx) + sizeof(config.n_ctx))
        throw PluginError(APR_ERR_INVALID_ARGUMENT, "session config struct_size " + std::to_string(config.struct_size) + " is too small");
    if (config.n_ctx == 0) throw PluginError(APR_ERR_INVALID_ARGUMENT, "session config n_ctx is 0");
    return config.n_ctx;
}

}  // namespace

Session::Session(const apr_model_view& view, const apr_session_config& config)
    : w_(bind_model(view)),
      kernels_(kernels_or_throw()),
      pool_(choose_threads(config)),
      n_ctx_(checked_n_ctx(config)),
      kv_(kv_type_from_env(), w_.n_layer, n_ctx_, w_.kv_dim()) {
    grouped_.build(w_, pool_);

    const int64_t half = w_.n_rot / 2;
    inv_freq_.resize(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) {
        double f = std::pow(static_cast<double>(w_.rope_freq_base), -2.0 * static_cast<double>(i) / static_cast<double>(w_.n_rot));
        f *= w_.rope_freq_scale;
        if (w_.rope_freqs) f /= w_.rope_freqs[i];
        inv_freq_[i] = static_cast<float>(f);
    }

    const size_t B = kMaxBatch;
    x_.resize(B * w_.n_embd);
    h_.resize(B * std::max(w_.n_embd, w_.q_dim()));
    q_.resize(B * w_.q_dim());
    k_.resize(B * w_.kv_dim());
    v_.resize(B * w_.kv_dim());
    attn_.resize(B * w_.q_dim());
    gate_.resize(B * w_.n_ff);
    up_.resize(B * w_.n_ff);
    proj_.resize(B * w_.n_embd);
    scores_.resize(static_cast<size_t>(pool_.size()) * static_cast<size_t>(n_ctx_));

    auto note = [this](const Matrix& m) {
        int64_t& width = act_width_[static_cast<size_t>(m.act)];
        width = std::max(width, m.n_in);
    };
    note(w_.output);
    for (const LayerWeights& L : w_.layers)
        for (const Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down}) note(*m);
    for (int k = 0; k < kActKindCount; ++k)
        if (act_width_[k] > 0) act_[k].resize(B * act_row_bytes(static_cast<ActKind>(k), act_width_[k]));
}

void Session::step(const int32_t* tokens, uint32_t n_tokens, uint32_t pos, bool all_logits, float* logits) {
    if (n_tokens == 0) throw PluginError(APR_ERR_INVALID_ARGUMENT, "n_tokens is 0");
    if (!tokens) throw PluginError(APR_ERR_INVALID_ARGUMENT, "tokens is NULL");
    if (!logits) throw PluginError(APR_ERR_INVALID_ARGUMENT, "logits is NULL");
    if (pos > n_cached_)
        throw PluginError(APR_ERR_INVALID_ARGUMENT, "pos " + std::to_string(pos) + " is past the cached length " + std::to_string(n_cached_));
    if (static_cast<int64_t>(pos) + n_tokens > n_ctx_)
        throw PluginError(APR_ERR_INVALID_ARGUMENT, "pos " + std::to_string(pos) + " + n_tokens " + std::to_string(n_tokens) +
                                                        " exceeds the session's n_ctx " + std::to_string(n_ctx_));
    for (uint32_t i = 0; i < n_tokens; ++i)
        if (tokens[i] < 0 || tokens[i] >= w_.n_vocab)
            throw PluginError(APR_ERR_INVALID_ARGUMENT, "token " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                                                            " is outside the vocabulary [0, " + std::to_string(w_.n_vocab) + ")");

    n_cached_ = pos;  // rewind: later positions are overwritten before they are read again
    for (int64_t done = 0; done < n_tokens;) {
        const int64_t n = std::min<int64_t>(kMaxBatch, n_tokens - done);
        const bool last_chunk = done + n == n_tokens;
        float* out = all_logits ? logits + done * w_.n_vocab : logits;
        forward(tokens + done, n, pos + done, out, all_logits, last_chunk);
        done += n;
        n_cached_ = pos + done;
    }
}

const uint8_t* Session::convert(ActKind kind, const float* x, int64_t n, int64_t width) {
    uint8_t* dst = act_[static_cast<size_t>(kind)].data();
    const size_t stride = act_row_bytes(kind, width);
    pool_.parallel_for(n, [&](int64_t t, unsigned) { quantize_activation(kind, x + t * width, width, dst + t * stride); });
    return dst;
}

void Session::multiply(const Product* products, int n_products, const float* x, int64_t n) {
    // Convert the input once per activation kind the matrices need.
    const uint8_t* converted[kActKindCount] = {};
    for (int p = 0; p < n_products; ++p) {
        const ActKind kind = products[p].m->act;
        if (!converted[static_cast<size_t>(kind)]) converted[static_cast<size_t>(kind)] = convert(kind, x, n, products[p].m->n_in);
    }
    // Split every matrix into chunks of rows; all chunks of all matrices are one parallel pass.
    const int64_t threads = pool_.size();
    int64_t chunk_rows[8], first_task[9];
    first_task[0] = 0;
    for (int p = 0; p < n_products; ++p) {
        const int64_t rows = products[p].m->n_out;
        int64_t c = (rows + threads * 8 - 1) / (threads * 8);
        c = std::max<int64_t>(16, (c + 15) / 16 * 16);
        chunk_rows[p] = c;
        first_task[p + 1] = first_task[p] + (rows + c - 1) / c;
    }
    pool_.parallel_for(first_task[n_products], [&](int64_t task, unsigned) {
        int p = 0;
        while (task >= first_task[p + 1]) ++p;
        const Matrix& m = *products[p].m;
        MatmulJob job;
        job.type = m.type;
        job.weight = m.data;
        job.row_bytes = m.row_bytes;
        job.grouped = m.grouped;  // chunk_rows is a multiple of 16: chunks start and end on groups
        job.n_in = m.n_in;
        job.act = converted[static_cast<size_t>(m.act)];
        job.act_stride = act_row_bytes(m.act, m.n_in);
        job.n_tok = n;
        job.out = products[p].out;
        job.out_stride = m.n_out;
        const int64_t r0 = (task - first_task[p]) * chunk_rows[p];
        kernels_.matmul_rows(job, r0, std::min(m.n_out, r0 + chunk_rows[p]));
    });
}

void Session::rms_norm(const float* x, const float* weight, float* out, int64_t n_rows, int64_t width) const {
    for (int64_t r = 0; r < n_rows; ++r) {
        const float* xr = x + r * width;
        double sum = 0.0;
        for (int64_t i = 0; i < width; ++i) sum += static_cast<double>(xr[i]) * xr[i];
        const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(width)) + w_.rms_norm_eps);
        float* o = out + r * width;
        for (int64_t i = 0; i < width; ++i) o[i] = (xr[i] * scale) * weight[i];
    }
}

void Session::rope(float* v, int64_t n_heads, int64_t pos) const {
    const int64_t half = w_.n_rot / 2;
    const bool neox = w_.rope_type == APR_ROPE_NEOX;
    for (int64_t i = 0; i < half; ++i) {
        const float theta = static_cast<float>(pos) * inv_freq_[i];
        const float c = std::cos(theta), s = std::sin(theta);
        // NORM rotates neighbours (2i, 2i+1); NEOX rotates (i, i + n_rot/2).
        const int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        for (int64_t h = 0; h < n_heads; ++h) {
            float* x = v + h * w_.head_dim;
            const float x0 = x[a], x1 = x[b];
            x[a] = x0 * c - x1 * s;
            x[b] = x0 * s + x1 * c;
        }
    }
}

void Session::attention(int64_t layer, int64_t n, int64_t pos) {
    const int64_t hd = w_.head_dim, q_dim = w_.q_dim();
    const int64_t group = w_.n_head / w_.n_head_kv;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    pool_.parallel_for(n * w_.n_head, [&](int64_t task, unsigned thread) {
        const int64_t t = task / w_.n_head, h = task % w_.n_head, kvh = h / group;
        const int64_t n_kv = pos + t + 1;  // causal: positions 0 .. pos + t
        const float* q = q_.data() + t * q_dim + h * hd;
        float* s = scores_.data() + static_cast<size_t>(thread) * n_ctx_;
        float max = -INFINITY;
        for (int64_t j = 0; j < n_kv; ++j) {
            s[j] = kv_.dot_key(kernels_, layer, j, kvh * hd, q, hd) * scale;
            max = std::max(max, s[j]);
        }
        double sum = 0.0;
        for (int64_t j = 0; j < n_kv; ++j) {
            s[j] = std::exp(s[j] - max);
            sum += s[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        float* o = attn_.data() + t * q_dim + h * hd;
        std::fill(o, o + hd, 0.0f);
        for (int64_t j = 0; j < n_kv; ++j) kv_.add_value(kernels_, layer, j, kvh * hd, s[j] * inv, o, hd);
    });
}

void Session::forward(const int32_t* tokens, int64_t n, int64_t pos, float* logits, bool logits_all, bool want_last) {
    const int64_t E = w_.n_embd, q_dim = w_.q_dim(), kv_dim = w_.kv_dim(), F = w_.n_ff;
    float* x = x_.data();
    for (int64_t t = 0; t < n; ++t)
        kernels_.dequantize_row(w_.token_embd.type, w_.token_embd.data + static_cast<size_t>(tokens[t]) * w_.token_embd.row_bytes,
                                x + t * E, E);

    for (int64_t l = 0; l < w_.n_layer; ++l) {
        const LayerWeights& L = w_.layers[l];
        // Attention block.
        rms_norm(x, L.attn_norm, h_.data(), n, E);
        const Product qkv[3] = {{&L.wq, q_.data()}, {&L.wk, k_.data()}, {&L.wv, v_.data()}};
        multiply(qkv, 3, h_.data(), n);
        for (int64_t t = 0; t < n; ++t) {
            float* q = q_.data() + t * q_dim;
            float* k = k_.data() + t * kv_dim;
            float* v = v_.data() + t * kv_dim;
            if (L.bq) {
                for (int64_t i = 0; i < q_dim; ++i) q[i] += L.bq[i];
                for (int64_t i = 0; i < kv_dim; ++i) k[i] += L.bk[i];
                for (int64_t i = 0; i < kv_dim; ++i) v[i] += L.bv[i];
            }
            if (L.q_norm) {
                rms_norm(q, L.q_norm, q, w_.n_head, w_.head_dim);
                rms_norm(k, L.k_norm, k, w_.n_head_kv, w_.head_dim);
            }
            rope(q, w_.n_head, pos + t);
            rope(k, w_.n_head_kv, pos + t);
            kv_.store(l, pos + t, k, v);
        }
        attention(l, n, pos);
        const Product wo[1] = {{&L.wo, proj_.data()}};
        multiply(wo, 1, attn_.data(), n);
        for (int64_t i = 0; i < n * E; ++i) x[i] += proj_[i];

        // Feed-forward block (SwiGLU).
        rms_norm(x, L.ffn_norm, h_.data(), n, E);
        const Product gate_up[2] = {{&L.gate, gate_.data()}, {&L.up, up_.data()}};
        multiply(gate_up, 2, h_.data(), n);
        // silu(gate) * up, in chunks over the threads (exp is the costliest scalar step of decode).
        constexpr int64_t kChunk = 2048;
        pool_.parallel_for((n * F + kChunk - 1) / kChunk, [&](int64_t chunk, unsigned) {
            const int64_t end = std::min(n * F, (chunk + 1) * kChunk);
            for (int64_t i = chunk * kChunk; i < end; ++i) {
                const float g = gate_[i];
                gate_[i] = g / (1.0f + std::exp(-g)) * up_[i];
            }
        });
        const Product down[1] = {{&L.down, proj_.data()}};
        multiply(down, 1, gate_.data(), n);
        for (int64_t i = 0; i < n * E; ++i) x[i] += proj_[i];
    }

    if (!logits_all && !want_last) return;
    const int64_t first = logits_all ? 0 : n - 1;  // rows that need logits
    const int64_t rows = n - first;
    rms_norm(x + first * E, w_.output_norm, h_.data(), rows, E);
    const Product out[1] = {{&w_.output, logits}};
    multiply(out, 1, h_.data(), rows);
}

}  // namespace apr_cpu
