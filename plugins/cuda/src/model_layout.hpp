// The model as the CUDA backend runs it: the view checked tensor by tensor (architecture,
// names, shapes, types) and gathered into per-layer records. Host-only; no CUDA calls here.
#pragma once

#include <apr/backend.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace apr_cuda {

// One tensor of the view as the backend uses it: a matrix of `rows` rows of `cols` elements
// (a vector has rows == 1), stored as whole blocks of `type`.
struct TensorRef {
    const apr_tensor_view* view = nullptr;  // null for an optional tensor the model lacks
    uint32_t type = APR_TYPE_F32;
    uint32_t cols = 0, rows = 0;
    size_t row_bytes = 0;
    bool present() const { return view != nullptr; }
};

struct LayerRefs {
    TensorRef attn_norm, ffn_norm;
    TensorRef wq, wk, wv, wo;
    TensorRef bq, bk, bv;          // qwen2
    TensorRef q_norm, k_norm;      // qwen3
    TensorRef gate, up, down;
};

struct ModelLayout {
    uint32_t arch = APR_ARCH_LLAMA;
    uint32_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0, n_rot = 0;
    uint32_t rope_type = APR_ROPE_NORM;
    float rope_freq_base = 10000.0f, rope_freq_scale = 1.0f, rms_norm_eps = 1e-5f;
    uint32_t q_dim() const { return n_head * head_dim; }
    uint32_t kv_dim() const { return n_head_kv * head_dim; }

    TensorRef token_embd, output_norm, output, rope_freqs;
    std::vector<LayerRefs> layers;
};

// Elements per block and bytes per block of a weight type; false when the backend has no
// decoder for it.
bool weight_type_traits(uint32_t type, uint32_t& block_elems, uint32_t& block_bytes);
const char* weight_type_name(uint32_t type);

// Checks everything the kernels rely on and throws BackendError(APR_ERR_UNSUPPORTED) naming the
// first problem (the tensor, its shape or type, or the hyperparameter).
ModelLayout check_model(const apr_model_view& model);

}  // namespace apr_cuda
