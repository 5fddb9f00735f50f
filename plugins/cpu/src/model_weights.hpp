// The model as the forward pass reads it: hyperparameters checked for consistency, and every
// tensor of the view found, checked (shape, type, size) and bound by pointer. Nothing is
// copied: matrices are read in place from the core's mapping of the file.
#pragma once

#include <apr/backend.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "block_formats.hpp"

namespace apr_cpu {

// A weight matrix of n_out rows of n_in elements, in any supported weight type.
struct Matrix {
    uint32_t type = 0;
    const uint8_t* data = nullptr;
    size_t row_bytes = 0;
    int64_t n_in = 0;
    int64_t n_out = 0;
    ActKind act = ActKind::F32;  // what its activation is converted to
    const uint8_t* grouped = nullptr;  // Q4_0 / Q8_0: a regrouped copy, when weight_repack made one
};

struct LayerWeights {
    const float* attn_norm = nullptr;
    Matrix wq, wk, wv, wo;
    const float* bq = nullptr;  // qwen2 only
    const float* bk = nullptr;
    const float* bv = nullptr;
    const float* q_norm = nullptr;  // qwen3 only
    const float* k_norm = nullptr;
    const float* ffn_norm = nullptr;
    Matrix gate, up, down;
};

struct ModelWeights {
    uint32_t arch = 0;
    int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0, n_rot = 0;
    uint32_t rope_type = 0;
    float rope_freq_base = 10000.0f, rope_freq_scale = 1.0f, rms_norm_eps = 1e-5f;

    Matrix token_embd;  // read row by row (dequantized), never multiplied
    Matrix output;
    const float* output_norm = nullptr;
    const float* rope_freqs = nullptr;  // optional, n_rot / 2 divisors
    std::vector<LayerWeights> layers;

    int64_t q_dim() const { return n_head * head_dim; }
    int64_t kv_dim() const { return n_head_kv * head_dim; }
};

// Throws PluginError: APR_ERR_INVALID_ARGUMENT for a malformed view, APR_ERR_UNSUPPORTED
// (naming the tensor, type or parameter) for a model this plugin cannot run.
ModelWeights bind_model(const apr_model_view& view);

}  // namespace apr_cpu
