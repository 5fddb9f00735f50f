#include "model_weights.hpp"

#include <cstddef>
#include <string>

#include "plugin_error.hpp"

namespace apr_cpu {
namespace {

[[noreturn]] void unsupported(const std::string& what) { throw PluginError(APR_ERR_UNSUPPORTED, what); }

std::string shape_text(const apr_tensor_view& t) {
    std::string s = "[";
    for (uint32_t d = 0; d < t.n_dims && d < 4; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
    return s + "]";
}

std::string type_text(uint32_t type) {
    const WeightTypeInfo* info = weight_type_info(type);
    return info ? info->name : "type " + std::to_string(type);
}

class Binder {
public:
    explicit Binder(const apr_model_view& view) : view_(view) {}

    const apr_tensor_view* find(const std::string& name, bool required) const {
        const apr_tensor_view* t = apr_model_find_tensor(&view_, name.c_str());
        if (!t && required) unsupported("tensor " + name + " is missing");
        return t;
    }

    // A matrix of `rows` rows of `cols` elements, any weight type the kernels read.
    Matrix matrix(const std::string& name, int64_t cols, int64_t rows) const {
        const apr_tensor_view& t = *find(name, true);
        check_shape(t, cols, rows);
        const WeightTypeInfo* info = weight_type_info(t.type);
        if (!info) unsupported("tensor " + name + " has weight type " + type_text(t.type) + ", which the cpu backend cannot read");
        if (cols % info->block_elems != 0)
            unsupported("tensor " + name + " (" + info->name + ") has rows of " + std::to_string(cols) +
                        " elements, not a whole number of " + std::to_string(info->block_elems) + "-element blocks");
        Matrix m;
        m.type = t.type;
        m.data = static_cast<const uint8_t*>(t.data);
        m.row_bytes = static_cast<size_t>(cols / info->block_elems) * info->block_bytes;
        m.n_in = cols;
        m.n_out = rows;
        m.act = info->act;
        check_bytes(t, m.row_bytes * static_cast<size_t>(rows));
        return m;
    }

    // An F32 vector of n elements (norm weights, biases, rope divisors).
    const float* vector(const std::string& name, int64_t n, bool required = true) const {
        const apr_tensor_view* t = find(name, required);
        if (!t) return nullptr;
        check_shape(*t, n, 1);
        if (t->type != APR_TYPE_F32) unsupported("tensor " + name + " has type " + type_text(t->type) + "; the cpu backend expects F32");
        check_bytes(*t, static_cast<size_t>(n) * sizeof(float));
        return static_cast<const float*>(t->data);
    }

private:
    static void check_shape(const apr_tensor_view& t, int64_t cols, int64_t rows) {
        bool ok = t.n_dims >= 1 && t.n_dims <= 4 && t.ne[0] == static_cast<uint64_t>(cols) &&
                  (t.n_dims >= 2 ? t.ne[1] : 1) == static_cast<uint64_t>(rows);
        for (uint32_t d = 2; ok && d < t.n_dims; ++d) ok = t.ne[d] == 1;
        if (!ok)
            unsupported("tensor " + std::string(t.name) + " has shape " + shape_text(t) + ", expected [" + std::to_string(cols) +
                        (rows != 1 ? ", " + std::to_string(rows) : "") + "]");
    }
    static void check_bytes(const apr_tensor_view& t, size_t need) {
        if (!t.data) throw PluginError(APR_ERR_INVALID_ARGUMENT, "tensor " + std::string(t.name) + " has no data pointer");
        if (t.n_bytes < need)
            throw PluginError(APR_ERR_INVALID_ARGUMENT, "tensor " + std::string(t.name) + " has " + std::to_string(t.n_bytes) +
                                                            " bytes, its shape and type need " + std::to_string(need));
    }
    const apr_model_view& view_;
};

}  // namespace

ModelWeights bind_model(const apr_model_view& view) {
    if (view.struct_size < offsetof(apr_model_view, tensors) + sizeof(view.tensors))
        throw PluginError(APR_ERR_INVALID_ARGUMENT, "model view struct_size " + std::to_string(view.struct_size) + " is too small");
    if (view.n_tensors > 0 && !view.tensors) throw PluginError(APR_ERR_INVALID_ARGUMENT, "model view has no tensor table");
    for (uint32_t i = 0; i < view.n_tensors; ++i)
        if (!view.tensors[i].name) throw PluginError(APR_ERR_INVALID_ARGUMENT, "model view tensor " + std::to_string(i) + " has no name");

    ModelWeights w;
    const std::string arch_name = view.arch_name ? view.arch_name : "?";
    if (view.arch > APR_ARCH_QWEN3) unsupported("architecture " + std::to_string(view.arch) + " (" + arch_name + ")");
    if (view.rope_type > APR_ROPE_NEOX) unsupported("rope type " + std::to_string(view.rope_type));
    w.arch = view.arch;
    w.n_vocab = view.n_vocab;
    w.n_embd = view.n_embd;
    w.n_layer = view.n_layer;
    w.n_head = view.n_head;
    w.n_head_kv = view.n_head_kv;
    w.head_dim = view.head_dim;
    w.n_ff = view.n_ff;
    w.n_rot = view.n_rot;
    w.rope_type = view.rope_type;
    w.rope_freq_base = view.rope_freq_base;
    w.rope_freq_scale = view.rope_freq_scale;
    w.rms_norm_eps = view.rms_norm_eps;
    if (w.n_vocab <= 0 || w.n_embd <= 0 || w.n_layer <= 0 || w.n_head <= 0 || w.n_head_kv <= 0 || w.head_dim <= 0 || w.n_ff <= 0)
        unsupported("hyperparameters: n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim and n_ff must all be positive");
    if (w.n_head % w.n_head_kv != 0)
        unsupported("n_head " + std::to_string(w.n_head) + " is not a multiple of n_head_kv " + std::to_string(w.n_head_kv));
    if (w.n_rot <= 0 || w.n_rot > w.head_dim || w.n_rot % 2 != 0)
        unsupported("n_rot " + std::to_string(w.n_rot) + " must be even and within head_dim " + std::to_string(w.head_dim));
    if (!(w.rope_freq_base > 0.0f) || !(w.rope_freq_scale > 0.0f) || !(w.rms_norm_eps >= 0.0f))
        unsupported("rope_freq_base, rope_freq_scale must be positive and rms_norm_eps not negative");

    const Binder b(view);
    w.token_embd = b.matrix("token_embd.weight", w.n_embd, w.n_vocab);
    w.output = b.matrix("output.weight", w.n_embd, w.n_vocab);
    w.output_norm = b.vector("output_norm.weight", w.n_embd);
    w.rope_freqs = b.vector("rope_freqs.weight", w.n_rot / 2, /*required=*/false);
    const bool qkv_bias = w.arch == APR_ARCH_QWEN2, qk_norm = w.arch == APR_ARCH_QWEN3;
    for (int64_t l = 0; l < w.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        LayerWeights L;
        L.attn_norm = b.vector(p + "attn_norm.weight", w.n_embd);
        L.wq = b.matrix(p + "attn_q.weight", w.n_embd, w.q_dim());
        L.wk = b.matrix(p + "attn_k.weight", w.n_embd, w.kv_dim());
        L.wv = b.matrix(p + "attn_v.weight", w.n_embd, w.kv_dim());
        L.wo = b.matrix(p + "attn_output.weight", w.q_dim(), w.n_embd);
        if (qkv_bias) {
            L.bq = b.vector(p + "attn_q.bias", w.q_dim());
            L.bk = b.vector(p + "attn_k.bias", w.kv_dim());
            L.bv = b.vector(p + "attn_v.bias", w.kv_dim());
        }
        if (qk_norm) {
            L.q_norm = b.vector(p + "attn_q_norm.weight", w.head_dim);
            L.k_norm = b.vector(p + "attn_k_norm.weight", w.head_dim);
        }
        L.ffn_norm = b.vector(p + "ffn_norm.weight", w.n_embd);
        L.gate = b.matrix(p + "ffn_gate.weight", w.n_embd, w.n_ff);
        L.up = b.matrix(p + "ffn_up.weight", w.n_embd, w.n_ff);
        L.down = b.matrix(p + "ffn_down.weight", w.n_ff, w.n_embd);
        w.layers.push_back(L);
    }
    return w;
}

}  // namespace apr_cpu
