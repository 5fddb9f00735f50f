// The tensors of an apr_model_view, looked up by name and checked once, before the reference
// forward runs: every tensor the architecture needs is present, has the documented shape and a
// type the core can dequantize, and its bytes cover its rows. Small vectors (norm weights,
// biases, RoPE frequency divisors) are dequantized to f32 here; matrices stay in the view and
// are dequantized row by row as they are used.
#pragma once

#include <apr/backend.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace apr::reference {

// A weight matrix: `rows` rows of `cols` elements each, in the view's mapped bytes.
struct MatrixRef {
    const apr_tensor_view* tensor = nullptr;
    uint64_t cols = 0;       // row length (ne[0]): the reduction dimension
    uint64_t rows = 0;       // ne[1]: the output dimension
    size_t row_bytes = 0;    // bytes per row in the tensor's type
    const uint8_t* row(uint64_t r) const { return static_cast<const uint8_t*>(tensor->data) + r * row_bytes; }
};

struct LayerWeights {
    std::vector<float> attn_norm;  // [n_embd]
    MatrixRef wq, wk, wv, wo;
    std::vector<float> bq, bk, bv;  // empty when the model has no q/k/v biases
    std::vector<float> q_norm, k_norm;  // [head_dim], qwen3 only; empty otherwise
    std::vector<float> ffn_norm;  // [n_embd]
    MatrixRef w_gate, w_up, w_down;
};

// The model's hyperparameters, as the reference uses them (validated for consistency).
struct Hyperparameters {
    uint32_t arch = APR_ARCH_LLAMA;
    uint32_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0, n_rot = 0;
    uint32_t rope_type = APR_ROPE_NORM;
    float rope_freq_base = 10000.0f, rope_freq_scale = 1.0f, rms_norm_eps = 1e-5f;
};

struct ModelWeights {
    Hyperparameters hp;
    MatrixRef token_embd;            // [n_vocab rows of n_embd]
    std::vector<LayerWeights> layers;
    std::vector<float> output_norm;  // [n_embd]
    MatrixRef output;                // [n_vocab rows of n_embd]
    std::vector<float> rope_freqs;   // [n_rot/2] divisors, empty when the model has none
};

// Resolves and checks every tensor the forward pass needs. Throws std::invalid_argument naming
// the model, the tensor and the problem.
ModelWeights resolve_model_weights(const apr_model_view& model);

}  // namespace apr::reference
