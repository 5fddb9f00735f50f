#include "reference/reference_weights.hpp"

#include <stdexcept>

#include "model/tensor_codec.hpp"

namespace apr::reference {
namespace {

class Resolver {
public:
    explicit Resolver(const apr_model_view& model) : model_(model) {
        name_ = model.model_name ? model.model_name : "<unnamed model>";
    }

    [[noreturn]] void fail(const std::string& what) const {
        throw std::invalid_argument("reference forward: model '" + name_ + "': " + what);
    }

    const apr_tensor_view* find(const std::string& name) const {
        const apr_tensor_view* t = apr_model_find_tensor(&model_, name.c_str());
        if (t && !t->data) fail("tensor " + name + " has no data");
        return t;
    }

    const apr_tensor_view& require(const std::string& name) const {
        const apr_tensor_view* t = find(name);
        if (!t) fail("missing tensor " + name);
        return *t;
    }

    // Bytes of one row of `cols` elements of t's type; fails with the tensor's name when the
    // type is unsupported or the row is not whole blocks.
    size_t row_bytes(const apr_tensor_view& t, uint64_t cols) const {
        try {
            return row_size(t.type, static_cast<int64_t>(cols));
        } catch (const std::exception& e) {
            fail(std::string("tensor ") + t.name + ": " + e.what());
        }
    }

    MatrixRef matrix(const std::string& name, uint64_t cols, uint64_t rows) const {
        const apr_tensor_view& t = require(name);
        if (t.n_dims != 2 || t.ne[0] != cols || t.ne[1] != rows)
            fail("tensor " + name + " has shape " + shape_text(t) + ", expected [" + std::to_string(cols) + ", " +
                 std::to_string(rows) + "]");
        MatrixRef m{&t, cols, rows, row_bytes(t, cols)};
        if (t.n_bytes < m.row_bytes * rows)
            fail("tensor " + name + " holds " + std::to_string(t.n_bytes) + " bytes, its shape needs " +
                 std::to_string(m.row_bytes * rows));
        return m;
    }

    // A 1-D tensor of n elements, dequantized to f32.
    std::vector<float> vector(const apr_tensor_view& t, uint64_t n) const {
        uint64_t elements = 1;
        for (uint32_t d = 0; d < t.n_dims && d < 4; ++d) elements *= t.ne[d];
        if (t.n_dims < 1 || t.n_dims > 4 || t.ne[0] != n || elements != n)
            fail(std::string("tensor ") + t.name + " has shape " + shape_text(t) + ", expected [" +
                 std::to_string(n) + "]");
        const size_t bytes = row_bytes(t, n);
        if (t.n_bytes < bytes)
            fail(std::string("tensor ") + t.name + " holds " + std::to_string(t.n_bytes) + " bytes, needs " +
                 std::to_string(bytes));
        std::vector<float> values(n);
        dequantize_row(t.type, t.data, values.data(), static_cast<int64_t>(n));
        return values;
    }

    std::vector<float> required_vector(const std::string& name, uint64_t n) const { return vector(require(name), n); }

    std::vector<float> optional_vector(const std::string& name, uint64_t n) const {
        const apr_tensor_view* t = find(name);
        return t ? vector(*t, n) : std::vector<float>{};
    }

    static std::string shape_text(const apr_tensor_view& t) {
        std::string s = "[";
        for (uint32_t d = 0; d < t.n_dims && d < 4; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
        return s + "]";
    }

private:
    const apr_model_view& model_;
    std::string name_;
};

Hyperparameters check_hyperparameters(const apr_model_view& m, const Resolver& r) {
    if (m.struct_size < sizeof(apr_model_view))
        r.fail("model view struct_size " + std::to_string(m.struct_size) + " is smaller than " +
               std::to_string(sizeof(apr_model_view)));
    if (m.arch != APR_ARCH_LLAMA && m.arch != APR_ARCH_QWEN2 && m.arch != APR_ARCH_QWEN3)
        r.fail("unknown architecture id " + std::to_string(m.arch));
    if (m.rope_type != APR_ROPE_NORM && m.rope_type != APR_ROPE_NEOX)
        r.fail("unknown rope type " + std::to_string(m.rope_type));
    if (m.n_vocab == 0 || m.n_embd == 0 || m.n_layer == 0 || m.n_head == 0 || m.n_head_kv == 0 || m.head_dim == 0 ||
        m.n_ff == 0)
        r.fail("a dimension is zero (n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff must be positive)");
    if (m.n_head % m.n_head_kv != 0)
        r.fail("n_head " + std::to_string(m.n_head) + " is not a multiple of n_head_kv " + std::to_string(m.n_head_kv));
    if (m.n_rot == 0 || m.n_rot > m.head_dim || m.n_rot % 2 != 0)
        r.fail("n_rot " + std::to_string(m.n_rot) + " must be even and within head_dim " + std::to_string(m.head_dim));
    if (!(m.rms_norm_eps >= 0.0f) || !(m.rope_freq_base > 0.0f) || !(m.rope_freq_scale > 0.0f))
        r.fail("rms_norm_eps must be >= 0 and rope_freq_base, rope_freq_scale > 0");
    Hyperparameters hp;
    hp.arch = m.arch;
    hp.n_vocab = m.n_vocab;
    hp.n_embd = m.n_embd;
    hp.n_layer = m.n_layer;
    hp.n_head = m.n_head;
    hp.n_head_kv = m.n_head_kv;
    hp.head_dim = m.head_dim;
    hp.n_ff = m.n_ff;
    hp.n_rot = m.n_rot;
    hp.rope_type = m.rope_type;
    hp.rope_freq_base = m.rope_freq_base;
    hp.rope_freq_scale = m.rope_freq_scale;
    hp.rms_norm_eps = m.rms_norm_eps;
    return hp;
}

}  // namespace

ModelWeights resolve_model_weights(const apr_model_view& model) {
    const Resolver r(model);
    ModelWeights w;
    w.hp = check_hyperparameters(model, r);
    const Hyperparameters& hp = w.hp;
    const uint64_t q_dim = uint64_t{hp.n_head} * hp.head_dim;
    const uint64_t kv_dim = uint64_t{hp.n_head_kv} * hp.head_dim;

    w.token_embd = r.matrix("token_embd.weight", hp.n_embd, hp.n_vocab);
    w.output_norm = r.required_vector("output_norm.weight", hp.n_embd);
    w.output = r.matrix("output.weight", hp.n_embd, hp.n_vocab);
    w.rope_freqs = r.optional_vector("rope_freqs.weight", hp.n_rot / 2);

    w.layers.resize(hp.n_layer);
    for (uint32_t l = 0; l < hp.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        LayerWeights& L = w.layers[l];
        L.attn_norm = r.required_vector(p + "attn_norm.weight", hp.n_embd);
        L.wq = r.matrix(p + "attn_q.weight", hp.n_embd, q_dim);
        L.wk = r.matrix(p + "attn_k.weight", hp.n_embd, kv_dim);
        L.wv = r.matrix(p + "attn_v.weight", hp.n_embd, kv_dim);
        L.wo = r.matrix(p + "attn_output.weight", q_dim, hp.n_embd);
        // q/k/v biases: required for qwen2; applied whenever a model has them (as llama.cpp does
        // for llama-family files that carry them).
        if (hp.arch == APR_ARCH_QWEN2) {
            L.bq = r.required_vector(p + "attn_q.bias", q_dim);
            L.bk = r.required_vector(p + "attn_k.bias", kv_dim);
            L.bv = r.required_vector(p + "attn_v.bias", kv_dim);
        } else {
            L.bq = r.optional_vector(p + "attn_q.bias", q_dim);
            L.bk = r.optional_vector(p + "attn_k.bias", kv_dim);
            L.bv = r.optional_vector(p + "attn_v.bias", kv_dim);
        }
        if (hp.arch == APR_ARCH_QWEN3) {
            L.q_norm = r.required_vector(p + "attn_q_norm.weight", hp.head_dim);
            L.k_norm = r.required_vector(p + "attn_k_norm.weight", hp.head_dim);
        }
        L.ffn_norm = r.required_vector(p + "ffn_norm.weight", hp.n_embd);
        L.w_gate = r.matrix(p + "ffn_gate.weight", hp.n_embd, hp.n_ff);
        L.w_up = r.matrix(p + "ffn_up.weight", hp.n_embd, hp.n_ff);
        L.w_down = r.matrix(p + "ffn_down.weight", hp.n_ff, hp.n_embd);
    }
    return w;
}

}  // namespace apr::reference
