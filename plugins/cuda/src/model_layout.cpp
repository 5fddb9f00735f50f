#include "model_layout.hpp"

#include <string>

#include "backend_error.hpp"

namespace apr_cuda {

bool weight_type_traits(uint32_t type, uint32_t& block_elems, uint32_t& block_bytes) {
    switch (type) {
        case APR_TYPE_F32: block_elems = 1; block_bytes = 4; return true;
        case APR_TYPE_F16: block_elems = 1; block_bytes = 2; return true;
        case APR_TYPE_BF16: block_elems = 1; block_bytes = 2; return true;
        case APR_TYPE_Q4_0: block_elems = 32; block_bytes = 18; return true;
        case APR_TYPE_Q4_1: block_elems = 32; block_bytes = 20; return true;
        case APR_TYPE_Q5_0: block_elems = 32; block_bytes = 22; return true;
        case APR_TYPE_Q5_1: block_elems = 32; block_bytes = 24; return true;
        case APR_TYPE_Q8_0: block_elems = 32; block_bytes = 34; return true;
        case APR_TYPE_Q4_K: block_elems = 256; block_bytes = 144; return true;
        case APR_TYPE_Q5_K: block_elems = 256; block_bytes = 176; return true;
        case APR_TYPE_Q6_K: block_elems = 256; block_bytes = 210; return true;
        default: return false;
    }
}

const char* weight_type_name(uint32_t type) {
    switch (type) {
        case APR_TYPE_F32: return "F32";
        case APR_TYPE_F16: return "F16";
        case APR_TYPE_BF16: return "BF16";
        case APR_TYPE_Q4_0: return "Q4_0";
        case APR_TYPE_Q4_1: return "Q4_1";
        case APR_TYPE_Q5_0: return "Q5_0";
        case APR_TYPE_Q5_1: return "Q5_1";
        case APR_TYPE_Q8_0: return "Q8_0";
        case APR_TYPE_Q4_K: return "Q4_K";
        case APR_TYPE_Q5_K: return "Q5_K";
        case APR_TYPE_Q6_K: return "Q6_K";
        default: return "unknown";
    }
}

namespace {

[[noreturn]] void unsupported(const std::string& message) {
    throw BackendError(APR_ERR_UNSUPPORTED, "cuda backend: " + message);
}

std::string shape_text(const apr_tensor_view& t) {
    std::string s = "[";
    for (uint32_t d = 0; d < t.n_dims && d < 4; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
    return s + "]";
}

// Finds `name` and checks it is [cols] (rows == 1) or [cols, rows], of a type the kernels decode
// (only F32 when `f32_only`), with whole blocks per row and exactly the bytes that implies.
TensorRef find(const apr_model_view& model, const std::string& name, uint64_t cols, uint64_t rows, bool f32_only,
               bool optional = false) {
    const apr_tensor_view* t = apr_model_find_tensor(&model, name.c_str());
    if (!t) {
        if (optional) return {};
        unsupported("tensor " + name + " is missing");
    }
    const bool vector = rows == 1;
    const bool shape_ok = t->ne[0] == cols && (vector ? (t->n_dims == 1 || t->ne[1] == 1) : t->ne[1] == rows) &&
                          t->ne[2] == 1 && t->ne[3] == 1 && t->n_dims <= 2;
    if (!shape_ok)
        unsupported("tensor " + name + " has shape " + shape_text(*t) + ", expected [" + std::to_string(cols) +
                    (vector ? "" : ", " + std::to_string(rows)) + "]");
    uint32_t block_elems = 0, block_bytes = 0;
    if (!weight_type_traits(t->type, block_elems, block_bytes) || (f32_only && t->type != APR_TYPE_F32))
        unsupported("tensor " + name + " has type " + std::to_string(t->type) + " (" + weight_type_name(t->type) +
                    "), which this backend cannot " + (f32_only ? "use here (F32 expected)" : "decode"));
    if (cols % block_elems != 0)
        unsupported("tensor " + name + " rows of " + std::to_string(cols) + " elements are not whole " +
                    weight_type_name(t->type) + " blocks of " + std::to_string(block_elems));
    TensorRef ref;
    ref.view = t;
    ref.type = t->type;
    ref.cols = static_cast<uint32_t>(cols);
    ref.rows = static_cast<uint32_t>(rows);
    ref.row_bytes = size_t(cols / block_elems) * block_bytes;
    if (!t->data || t->n_bytes != ref.row_bytes * rows)
        unsupported("tensor " + name + " holds " + std::to_string(t->n_bytes) + " bytes, expected " +
                    std::to_string(ref.row_bytes * rows));
    return ref;
}

}  // namespace

ModelLayout check_model(const apr_model_view& model) {
    if (model.struct_size < sizeof(apr_model_view)) unsupported("model view is older than this plugin's ABI");
    if (model.arch != APR_ARCH_LLAMA && model.arch != APR_ARCH_QWEN2 && model.arch != APR_ARCH_QWEN3)
        unsupported(std::string("architecture ") + (model.arch_name ? model.arch_name : "?") + " (id " +
                    std::to_string(model.arch) + ") is not supported (llama, qwen2, qwen3 are)");
    ModelLayout m;
    m.arch = model.arch;
    m.n_vocab = model.n_vocab;
    m.n_embd = model.n_embd;
    m.n_layer = model.n_layer;
    m.n_head = model.n_head;
    m.n_head_kv = model.n_head_kv;
    m.head_dim = model.head_dim;
    m.n_ff = model.n_ff;
    m.n_rot = model.n_rot;
    m.rope_type = model.rope_type;
    m.rope_freq_base = model.rope_freq_base;
    m.rope_freq_scale = model.rope_freq_scale;
    m.rms_norm_eps = model.rms_norm_eps;

    if (!m.n_vocab || !m.n_embd || !m.n_layer || !m.n_head || !m.n_head_kv || !m.head_dim || !m.n_ff)
        unsupported("a hyperparameter is zero (n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff)");
    if (m.n_head % m.n_head_kv != 0)
        unsupported("n_head " + std::to_string(m.n_head) + " is not a multiple of n_head_kv " +
                    std::to_string(m.n_head_kv));
    // The attention kernel keeps a head in shared memory and reads it four values at a time.
    if (m.head_dim > 256 || m.head_dim % 4 != 0)
        unsupported("head_dim " + std::to_string(m.head_dim) + " (must be a multiple of 4, at most 256)");
    if (m.n_rot != m.head_dim) unsupported("n_rot " + std::to_string(m.n_rot) + " differs from head_dim");
    if (m.rope_type != APR_ROPE_NORM && m.rope_type != APR_ROPE_NEOX)
        unsupported("rope type " + std::to_string(m.rope_type));
    if (!(m.rope_freq_base > 0) || !(m.rope_freq_scale > 0) || !(m.rms_norm_eps >= 0))
        unsupported("rope_freq_base, rope_freq_scale must be positive and rms_norm_eps non-negative");

    const uint32_t E = m.n_embd, Q = m.q_dim(), KV = m.kv_dim(), F = m.n_ff;
    m.token_embd = find(model, "token_embd.weight", E, m.n_vocab, false);
    m.output_norm = find(model, "output_norm.weight", E, 1, true);
    m.output = find(model, "output.weight", E, m.n_vocab, false);
    m.rope_freqs = find(model, "rope_freqs.weight", m.n_rot / 2, 1, true, true);
    m.layers.resize(m.n_layer);
    for (uint32_t l = 0; l < m.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        LayerRefs& L = m.layers[l];
        L.attn_norm = find(model, p + "attn_norm.weight", E, 1, true);
        L.wq = find(model, p + "attn_q.weight", E, Q, false);
        L.wk = find(model, p + "attn_k.weight", E, KV, false);
        L.wv = find(model, p + "attn_v.weight", E, KV, false);
        L.wo = find(model, p + "attn_output.weight", Q, E, false);
        if (m.arch == APR_ARCH_QWEN2) {
            L.bq = find(model, p + "attn_q.bias", Q, 1, true);
            L.bk = find(model, p + "attn_k.bias", KV, 1, true);
            L.bv = find(model, p + "attn_v.bias", KV, 1, true);
        }
        if (m.arch == APR_ARCH_QWEN3) {
            L.q_norm = find(model, p + "attn_q_norm.weight", m.head_dim, 1, true);
            L.k_norm = find(model, p + "attn_k_norm.weight", m.head_dim, 1, true);
        }
        L.ffn_norm = find(model, p + "ffn_norm.weight", E, 1, true);
        L.gate = find(model, p + "ffn_gate.weight", E, F, false);
        L.up = find(model, p + "ffn_up.weight", E, F, false);
        L.down = find(model, p + "ffn_down.weight", F, E, false);
    }
    return m;
}

}  // namespace apr_cuda
