// libapr_backend_minimal.so — the smallest complete apr backend, written for backend authors to
// read. It serves any model the core's reference can run whose weights are F32, F16, BF16, Q8_0
// or Q4_0 (APR_ERR_UNSUPPORTED for other types), with a plain single-threaded f32 forward:
// each weight row is dequantized to f32 as it is used, each token is run one at a time.
// Nothing here is fast; everything here is what the ABI asks for:
//  - exactly two exported symbols (apr_backend_descriptor, apr_backend_step),
//  - no C++ exception ever leaves a function the core calls (see `guard`),
//  - every failure returns a status and leaves its reason in last_error,
//  - the model is only read through the apr_model_view, never from a file.
#include <apr/backend.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// ---- errors: a status and a reason, turned into the ABI's status + last_error -----------------

thread_local std::string g_last_error;

struct BackendError : std::runtime_error {
    BackendError(apr_status s, const std::string& what) : std::runtime_error(what), status(s) {}
    apr_status status;
};

[[noreturn]] void fail(apr_status status, const std::string& reason) { throw BackendError(status, reason); }

// Runs `body`, turning every exception into a status with its reason in g_last_error.
template <typename F>
apr_status guard(F&& body) noexcept {
    try {
        g_last_error.clear();
        body();
        return APR_OK;
    } catch (const BackendError& e) {
        g_last_error = std::string("minimal: ") + e.what();
        return e.status;
    } catch (const std::bad_alloc&) {
        g_last_error = "minimal: out of host memory";
        return APR_ERR_OUT_OF_MEMORY;
    } catch (const std::exception& e) {
        g_last_error = std::string("minimal: ") + e.what();
        return APR_ERR_INTERNAL;
    } catch (...) {
        g_last_error = "minimal: unknown failure";
        return APR_ERR_INTERNAL;
    }
}

// ---- weights: rows of any supported type, dequantized to f32 ----------------------------------

float half_to_float(uint16_t h) {
    const uint32_t sign = (h >> 15) & 1u, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    float magnitude;
    if (exponent == 0)
        magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // zero and subnormals
    else if (exponent == 31)
        magnitude = mantissa ? NAN : INFINITY;
    else
        magnitude = std::ldexp(static_cast<float>(mantissa | 0x400u), static_cast<int>(exponent) - 25);
    return sign ? -magnitude : magnitude;
}

uint16_t read_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

// Bytes of one row of `n` elements, or 0 for a type this backend does not read.
uint64_t row_bytes(uint32_t type, uint64_t n) {
    switch (type) {
        case APR_TYPE_F32: return 4 * n;
        case APR_TYPE_F16:
        case APR_TYPE_BF16: return 2 * n;
        case APR_TYPE_Q8_0: return n / 32 * 34;  // fp16 scale + 32 int8
        case APR_TYPE_Q4_0: return n / 32 * 18;  // fp16 scale + 16 bytes of nibbles
        default: return 0;
    }
}

void dequantize_row(uint32_t type, const uint8_t* src, uint64_t n, float* dst) {
    switch (type) {
        case APR_TYPE_F32: std::memcpy(dst, src, n * 4); return;
        case APR_TYPE_F16:
            for (uint64_t i = 0; i < n; ++i) dst[i] = half_to_float(read_u16(src + 2 * i));
            return;
        case APR_TYPE_BF16:
            for (uint64_t i = 0; i < n; ++i) {
                const uint32_t bits = static_cast<uint32_t>(read_u16(src + 2 * i)) << 16;
                std::memcpy(&dst[i], &bits, 4);
            }
            return;
        case APR_TYPE_Q8_0:
            for (uint64_t b = 0; b < n / 32; ++b, src += 34) {
                const float d = half_to_float(read_u16(src));
                for (int j = 0; j < 32; ++j) dst[b * 32 + j] = d * static_cast<float>(static_cast<int8_t>(src[2 + j]));
            }
            return;
        case APR_TYPE_Q4_0:
            // Element j of a block is the low nibble of byte j, element j + 16 its high nibble.
            for (uint64_t b = 0; b < n / 32; ++b, src += 18) {
                const float d = half_to_float(read_u16(src));
                for (int j = 0; j < 16; ++j) {
                    dst[b * 32 + j] = d * static_cast<float>((src[2 + j] & 0x0f) - 8);
                    dst[b * 32 + j + 16] = d * static_cast<float>((src[2 + j] >> 4) - 8);
                }
            }
            return;
        default: fail(APR_ERR_UNSUPPORTED, "tensor type " + std::to_string(type) + " is not supported");
    }
}

std::string type_name(uint32_t type) {
    switch (type) {
        case APR_TYPE_Q4_1: return "Q4_1";
        case APR_TYPE_Q5_0: return "Q5_0";
        case APR_TYPE_Q5_1: return "Q5_1";
        case APR_TYPE_Q4_K: return "Q4_K";
        case APR_TYPE_Q5_K: return "Q5_K";
        case APR_TYPE_Q6_K: return "Q6_K";
        default: return "type " + std::to_string(type);
    }
}

// A tensor of the view, checked against the shape the forward expects.
struct Tensor {
    const apr_tensor_view* view = nullptr;
    uint64_t cols = 0, rows = 0;

    explicit operator bool() const { return view != nullptr; }
    const uint8_t* row(uint64_t r) const {
        return static_cast<const uint8_t*>(view->data) + r * row_bytes(view->type, cols);
    }
};

Tensor find(const apr_model_view& m, const std::string& name, uint64_t cols, uint64_t rows, bool required = true) {
    const apr_tensor_view* t = apr_model_find_tensor(&m, name.c_str());
    if (!t) {
        if (required) fail(APR_ERR_UNSUPPORTED, "the model has no tensor " + name);
        return {};
    }
    if (t->ne[0] != cols || t->ne[1] != rows)
        fail(APR_ERR_UNSUPPORTED, name + " is [" + std::to_string(t->ne[0]) + ", " + std::to_string(t->ne[1]) +
                                      "], expected [" + std::to_string(cols) + ", " + std::to_string(rows) + "]");
    const uint64_t bytes = row_bytes(t->type, cols);
    if (bytes == 0) fail(APR_ERR_UNSUPPORTED, name + " has weight type " + type_name(t->type) + " (this backend reads F32, F16, BF16, Q8_0, Q4_0)");
    if (t->type != APR_TYPE_F32 && t->type != APR_TYPE_F16 && t->type != APR_TYPE_BF16 && cols % 32 != 0)
        fail(APR_ERR_UNSUPPORTED, name + ": rows of " + std::to_string(cols) + " are not whole blocks of 32");
    if (!t->data || t->n_bytes < bytes * rows) fail(APR_ERR_INVALID_ARGUMENT, name + " holds fewer bytes than its shape needs");
    return Tensor{t, cols, rows};
}

// y[r] = dot(row r of w, x) for every row, with one scratch row of f32.
void matvec(const Tensor& w, const float* x, float* y, std::vector<float>& scratch) {
    scratch.resize(w.cols);
    for (uint64_t r = 0; r < w.rows; ++r) {
        dequantize_row(w.view->type, w.row(r), w.cols, scratch.data());
        float sum = 0.0f;
        for (uint64_t i = 0; i < w.cols; ++i) sum += scratch[i] * x[i];
        y[r] = sum;
    }
}

// out = x / rms(x) * weight  (weight is an F32 vector of n; may alias x)
void rmsnorm(const float* x, const Tensor& weight, uint32_t n, float eps, float* out, std::vector<float>& scratch) {
    float ss = 0.0f;
    for (uint32_t i = 0; i < n; ++i) ss += x[i] * x[i];
    const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
    scratch.resize(n);
    dequantize_row(weight.view->type, weight.row(0), n, scratch.data());
    for (uint32_t i = 0; i < n; ++i) out[i] = x[i] * scale * scratch[i];
}

// ---- the session: weights found once at open, a KV cache, one token at a time ------------------

struct Layer {
    Tensor attn_norm, wq, wk, wv, bq, bk, bv, q_norm, k_norm, wo, ffn_norm, gate, up, down;
};

struct Session {
    apr_model_view model{};
    uint32_t n_ctx = 0;
    uint32_t n_cached = 0;  // positions held in the KV cache
    Tensor token_embd, output_norm, output, rope_freqs;
    std::vector<Layer> layers;
    std::vector<float> k_cache, v_cache;  // [layer][position][n_head_kv * head_dim]
    // scratch
    std::vector<float> x, h, q, k, v, att, scores, ffn_gate, ffn_up, tmp, row;

    Session(const apr_model_view& m, uint32_t ctx);
    void forward(int32_t token, uint32_t pos, float* logits);
    void rope(float* vec, uint32_t n_heads, uint32_t pos) const;
};

Session::Session(const apr_model_view& m, uint32_t ctx) : model(m), n_ctx(ctx) {
    if (m.arch != APR_ARCH_LLAMA && m.arch != APR_ARCH_QWEN2 && m.arch != APR_ARCH_QWEN3)
        fail(APR_ERR_UNSUPPORTED, "architecture " + std::string(m.arch_name ? m.arch_name : "?") + " is not supported");
    if (m.n_head == 0 || m.n_head_kv == 0 || m.n_head % m.n_head_kv != 0 || m.head_dim == 0 ||
        m.n_rot != m.head_dim || m.head_dim % 2 != 0 || m.n_vocab == 0 || m.n_embd == 0 || m.n_layer == 0)
        fail(APR_ERR_UNSUPPORTED, "hyperparameters this backend cannot run (heads, head_dim, n_rot)");
    const uint32_t q_dim = m.n_head * m.head_dim, kv_dim = m.n_head_kv * m.head_dim;
    token_embd = find(m, "token_embd.weight", m.n_embd, m.n_vocab);
    output_norm = find(m, "output_norm.weight", m.n_embd, 1);
    output = find(m, "output.weight", m.n_embd, m.n_vocab);
    rope_freqs = find(m, "rope_freqs.weight", m.n_rot / 2, 1, false);
    if (rope_freqs && rope_freqs.view->type != APR_TYPE_F32) fail(APR_ERR_UNSUPPORTED, "rope_freqs.weight must be F32");
    for (uint32_t l = 0; l < m.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        Layer L;
        L.attn_norm = find(m, p + "attn_norm.weight", m.n_embd, 1);
        L.wq = find(m, p + "attn_q.weight", m.n_embd, q_dim);
        L.wk = find(m, p + "attn_k.weight", m.n_embd, kv_dim);
        L.wv = find(m, p + "attn_v.weight", m.n_embd, kv_dim);
        const bool qwen2 = m.arch == APR_ARCH_QWEN2, qwen3 = m.arch == APR_ARCH_QWEN3;
        L.bq = find(m, p + "attn_q.bias", q_dim, 1, qwen2);
        L.bk = find(m, p + "attn_k.bias", kv_dim, 1, qwen2);
        L.bv = find(m, p + "attn_v.bias", kv_dim, 1, qwen2);
        L.q_norm = find(m, p + "attn_q_norm.weight", m.head_dim, 1, qwen3);
        L.k_norm = find(m, p + "attn_k_norm.weight", m.head_dim, 1, qwen3);
        L.wo = find(m, p + "attn_output.weight", q_dim, m.n_embd);
        L.ffn_norm = find(m, p + "ffn_norm.weight", m.n_embd, 1);
        L.gate = find(m, p + "ffn_gate.weight", m.n_embd, m.n_ff);
        L.up = find(m, p + "ffn_up.weight", m.n_embd, m.n_ff);
        L.down = find(m, p + "ffn_down.weight", m.n_ff, m.n_embd);
        for (const Tensor* t : {&L.bq, &L.bk, &L.bv})
            if (*t && t->view->type != APR_TYPE_F32) fail(APR_ERR_UNSUPPORTED, "q/k/v biases must be F32");
        layers.push_back(L);
    }
    const size_t cache = static_cast<size_t>(m.n_layer) * n_ctx * kv_dim;
    k_cache.assign(cache, 0.0f);
    v_cache.assign(cache, 0.0f);
    x.resize(m.n_embd);
    h.resize(m.n_embd);
    q.resize(q_dim);
    k.resize(kv_dim);
    v.resize(kv_dim);
    att.resize(q_dim);
    scores.resize(n_ctx);
    ffn_gate.resize(m.n_ff);
    ffn_up.resize(m.n_ff);
    tmp.resize(m.n_embd);
}

void Session::rope(float* vec, uint32_t n_heads, uint32_t pos) const {
    const uint32_t d = model.head_dim, half = model.n_rot / 2;
    const float* divisors = rope_freqs ? static_cast<const float*>(rope_freqs.view->data) : nullptr;
    for (uint32_t hd = 0; hd < n_heads; ++hd) {
        float* v = vec + static_cast<size_t>(hd) * d;
        for (uint32_t i = 0; i < half; ++i) {
            double theta = pos * static_cast<double>(model.rope_freq_scale) *
                           std::pow(static_cast<double>(model.rope_freq_base), -2.0 * i / model.n_rot);
            if (divisors) theta /= divisors[i];
            const float c = static_cast<float>(std::cos(theta)), s = static_cast<float>(std::sin(theta));
            // NORM rotates neighbours (2i, 2i+1); NEOX rotates i with i + n_rot/2.
            const uint32_t a = model.rope_type == APR_ROPE_NEOX ? i : 2 * i;
            const uint32_t b = model.rope_type == APR_ROPE_NEOX ? i + half : 2 * i + 1;
            const float x0 = v[a], x1 = v[b];
            v[a] = x0 * c - x1 * s;
            v[b] = x0 * s + x1 * c;
        }
    }
}

void Session::forward(int32_t token, uint32_t pos, float* logits) {
    const apr_model_view& m = model;
    const uint32_t d = m.head_dim, kv_dim = m.n_head_kv * d, group = m.n_head / m.n_head_kv;
    dequantize_row(token_embd.view->type, token_embd.row(static_cast<uint64_t>(token)), m.n_embd, x.data());
    for (uint32_t l = 0; l < m.n_layer; ++l) {
        const Layer& L = layers[l];
        rmsnorm(x.data(), L.attn_norm, m.n_embd, m.rms_norm_eps, h.data(), row);
        matvec(L.wq, h.data(), q.data(), row);
        matvec(L.wk, h.data(), k.data(), row);
        matvec(L.wv, h.data(), v.data(), row);
        if (L.bq) {
            const float* bq = static_cast<const float*>(L.bq.view->data);
            const float* bk = static_cast<const float*>(L.bk.view->data);
            const float* bv = static_cast<const float*>(L.bv.view->data);
            for (size_t i = 0; i < q.size(); ++i) q[i] += bq[i];
            for (size_t i = 0; i < k.size(); ++i) k[i] += bk[i], v[i] += bv[i];
        }
        if (L.q_norm) {
            for (uint32_t hd = 0; hd < m.n_head; ++hd) rmsnorm(&q[hd * d], L.q_norm, d, m.rms_norm_eps, &q[hd * d], tmp);
            for (uint32_t hd = 0; hd < m.n_head_kv; ++hd) rmsnorm(&k[hd * d], L.k_norm, d, m.rms_norm_eps, &k[hd * d], tmp);
        }
        rope(q.data(), m.n_head, pos);
        rope(k.data(), m.n_head_kv, pos);
        float* kc = &k_cache[(static_cast<size_t>(l) * n_ctx) * kv_dim];
        float* vc = &v_cache[(static_cast<size_t>(l) * n_ctx) * kv_dim];
        std::memcpy(kc + static_cast<size_t>(pos) * kv_dim, k.data(), kv_dim * sizeof(float));
        std::memcpy(vc + static_cast<size_t>(pos) * kv_dim, v.data(), kv_dim * sizeof(float));

        // Causal attention over positions 0..pos; query head hd reads kv head hd / group.
        const float scale = 1.0f / std::sqrt(static_cast<float>(d));
        for (uint32_t hd = 0; hd < m.n_head; ++hd) {
            const float* qh = &q[hd * d];
            const uint32_t kvh = hd / group;
            float top = -INFINITY;
            for (uint32_t t = 0; t <= pos; ++t) {
                const float* kt = kc + static_cast<size_t>(t) * kv_dim + kvh * d;
                float s = 0.0f;
                for (uint32_t i = 0; i < d; ++i) s += qh[i] * kt[i];
                scores[t] = s * scale;
                top = std::max(top, scores[t]);
            }
            float total = 0.0f;
            for (uint32_t t = 0; t <= pos; ++t) total += (scores[t] = std::exp(scores[t] - top));
            float* out = &att[hd * d];
            std::fill(out, out + d, 0.0f);
            for (uint32_t t = 0; t <= pos; ++t) {
                const float* vt = vc + static_cast<size_t>(t) * kv_dim + kvh * d;
                const float w = scores[t] / total;
                for (uint32_t i = 0; i < d; ++i) out[i] += w * vt[i];
            }
        }
        matvec(L.wo, att.data(), tmp.data(), row);
        for (uint32_t i = 0; i < m.n_embd; ++i) x[i] += tmp[i];

        rmsnorm(x.data(), L.ffn_norm, m.n_embd, m.rms_norm_eps, h.data(), row);
        matvec(L.gate, h.data(), ffn_gate.data(), row);
        matvec(L.up, h.data(), ffn_up.data(), row);
        for (uint32_t i = 0; i < m.n_ff; ++i) ffn_gate[i] = ffn_gate[i] / (1.0f + std::exp(-ffn_gate[i])) * ffn_up[i];
        matvec(L.down, ffn_gate.data(), tmp.data(), row);
        for (uint32_t i = 0; i < m.n_embd; ++i) x[i] += tmp[i];
    }
    if (logits) {
        rmsnorm(x.data(), output_norm, m.n_embd, m.rms_norm_eps, h.data(), row);
        matvec(output, h.data(), logits, row);
    }
}

// ---- the ABI ----------------------------------------------------------------------------------

apr_status minimal_probe(apr_device_info* info) {
    return guard([&] {
        if (!info || info->struct_size < sizeof(uint32_t)) fail(APR_ERR_INVALID_ARGUMENT, "probe: info is null");
        // Write only the fields the core's struct_size covers.
        if (info->struct_size >= offsetof(apr_device_info, driver))
            std::snprintf(info->description, sizeof info->description, "%s", "host CPU, portable scalar C++, 1 thread");
        if (info->struct_size >= offsetof(apr_device_info, memory_bytes))
            std::snprintf(info->driver, sizeof info->driver, "%s", "apr minimal example 0.1.0");
    });
}

apr_status minimal_open(const apr_model_view* model, const apr_session_config* config, apr_session** out) {
    if (out) *out = nullptr;
    return guard([&] {
        if (!model || !config || !out) fail(APR_ERR_INVALID_ARGUMENT, "open: model, config and out must not be null");
        if (model->struct_size < sizeof(apr_model_view))
            fail(APR_ERR_UNSUPPORTED, "open: model view struct_size " + std::to_string(model->struct_size) + " is older than this backend reads");
        if (config->struct_size < offsetof(apr_session_config, n_threads) || config->n_ctx == 0)
            fail(APR_ERR_INVALID_ARGUMENT, "open: config needs n_ctx > 0");
        *out = reinterpret_cast<apr_session*>(new Session(*model, config->n_ctx));
    });
}

void minimal_close(apr_session* session) { delete reinterpret_cast<Session*>(session); }

const char* minimal_last_error(void) { return g_last_error.c_str(); }

}  // namespace

// The declarations in apr/backend.h already mark both symbols APR_BACKEND_EXPORT (visible).
extern "C" {

const apr_backend_desc apr_backend_descriptor = {
    APR_BACKEND_ABI_VERSION,
    sizeof(apr_backend_desc),
    "minimal",                       // must match libapr_backend_minimal.so
    "apr minimal example backend",
    "0.1.0",
    10,                              // below the shipped backends: tried last unless asked for
    APR_BACKEND_FLAG_CPU,
    minimal_probe,
    minimal_open,
    minimal_close,
    minimal_last_error,
};

apr_status apr_backend_step(apr_session* session, const int32_t* tokens, uint32_t n_tokens,
                            uint32_t pos, uint32_t flags, float* logits) {
    return guard([&] {
        if (!session || !tokens || !logits || n_tokens == 0)
            fail(APR_ERR_INVALID_ARGUMENT, "step: session, tokens and logits must be set and n_tokens > 0");
        Session& s = *reinterpret_cast<Session*>(session);
        if (pos > s.n_cached)
            fail(APR_ERR_INVALID_ARGUMENT, "step: position " + std::to_string(pos) + " is past the " +
                                               std::to_string(s.n_cached) + " cached positions");
        if (static_cast<uint64_t>(pos) + n_tokens > s.n_ctx)
            fail(APR_ERR_INVALID_ARGUMENT, "step: positions " + std::to_string(pos) + ".." +
                                               std::to_string(pos + n_tokens - 1) + " exceed n_ctx " + std::to_string(s.n_ctx));
        for (uint32_t i = 0; i < n_tokens; ++i)
            if (tokens[i] < 0 || static_cast<uint32_t>(tokens[i]) >= s.model.n_vocab)
                fail(APR_ERR_INVALID_ARGUMENT, "step: token id " + std::to_string(tokens[i]) + " is outside the vocabulary");
        s.n_cached = pos;  // rewinding is only forgetting: later positions are overwritten
        const bool all = (flags & APR_STEP_LOGITS_ALL) != 0;
        for (uint32_t i = 0; i < n_tokens; ++i) {
            const bool want = all || i + 1 == n_tokens;
            float* row = want ? logits + (all ? static_cast<size_t>(i) * s.model.n_vocab : 0) : nullptr;
            s.forward(tokens[i], pos + i, row);
            s.n_cached = pos + i + 1;
        }
    });
}

}  // extern "C"
