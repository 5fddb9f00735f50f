// An apr_model_view built in memory by a test, tensor by tensor, without any model file: the
// reference forward consumes only a view, so its math can be tested on hand-picked or seeded
// random weights independently of the GGUF reader and writer. Header-only: the test build
// compiles only *_test.cpp files from unit folders.
#pragma once

#include <apr/backend.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/tensor_codec.hpp"

namespace apr::test {

struct TinyShape {
    uint32_t arch = APR_ARCH_LLAMA;
    uint32_t rope_type = APR_ROPE_NORM;
    uint32_t n_vocab = 64, n_embd = 32, n_layer = 2, n_head = 4, n_head_kv = 2, head_dim = 8, n_ff = 48;
    float rope_freq_base = 10000.0f, rope_freq_scale = 1.0f, rms_norm_eps = 1e-5f;
};

class TestModelView {
public:
    explicit TestModelView(const TinyShape& shape);

    // Adds a tensor of ne = [cols, rows] (rows = 1 for a vector) holding `values` (cols * rows
    // floats), stored as `type` (quantized with apr::quantize_row when not F32).
    void add(const std::string& name, std::vector<float> values, uint64_t cols, uint64_t rows = 1,
             uint32_t type = APR_TYPE_F32);
    // Replaces the values of a tensor added before (same shape and type).
    void set(const std::string& name, std::vector<float> values);

    // Adds every tensor `shape` needs (qwen2 biases, qwen3 q/k norms included) with seeded
    // random values: matrices N(0, 0.1²) stored as `matrix_type`, norm weights 1 + N(0, 0.1²).
    void add_random_weights(uint32_t seed, uint32_t matrix_type = APR_TYPE_F32);

    // The view over the tensors added so far. It stays valid while this object lives and no
    // tensor is added (adding one rebuilds the table on the next call; set() changes values in place).
    const apr_model_view& view();

    const TinyShape& shape() const { return shape_; }

private:
    struct Stored {
        std::string name;
        uint32_t type;
        uint64_t cols, rows;
        std::vector<uint8_t> bytes;
    };
    TinyShape shape_;
    std::deque<Stored> tensors_;  // deque: element addresses stay put as tensors are added
    std::vector<apr_tensor_view> table_;
    apr_model_view view_{};
    bool view_stale_ = true;
};

// n values drawn from N(mean, sd²) with a seeded generator.
inline std::vector<float> normal_values(std::mt19937& rng, size_t n, float mean, float sd) {
    std::normal_distribution<float> dist(mean, sd);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

inline TestModelView::TestModelView(const TinyShape& shape) : shape_(shape) {}

inline void TestModelView::add(const std::string& name, std::vector<float> values, uint64_t cols, uint64_t rows,
                        uint32_t type) {
    if (values.size() != cols * rows) throw std::invalid_argument("TestModelView::add: wrong value count for " + name);
    Stored s{name, type, cols, rows, {}};
    const size_t row_bytes = row_size(type, static_cast<int64_t>(cols));
    s.bytes.resize(row_bytes * rows);
    for (uint64_t r = 0; r < rows; ++r)
        quantize_row(type, values.data() + r * cols, s.bytes.data() + r * row_bytes, static_cast<int64_t>(cols));
    tensors_.push_back(std::move(s));
    view_stale_ = true;
}

inline void TestModelView::set(const std::string& name, std::vector<float> values) {
    for (auto& s : tensors_) {
        if (s.name != name) continue;
        if (values.size() != s.cols * s.rows) throw std::invalid_argument("TestModelView::set: wrong count for " + name);
        const size_t row_bytes = row_size(s.type, static_cast<int64_t>(s.cols));
        for (uint64_t r = 0; r < s.rows; ++r)
            quantize_row(s.type, values.data() + r * s.cols, s.bytes.data() + r * row_bytes,
                         static_cast<int64_t>(s.cols));
        return;
    }
    throw std::invalid_argument("TestModelView::set: no tensor " + name);
}

inline void TestModelView::add_random_weights(uint32_t seed, uint32_t matrix_type) {
    std::mt19937 rng(seed);
    const TinyShape& s = shape_;
    const uint64_t q_dim = uint64_t{s.n_head} * s.head_dim, kv_dim = uint64_t{s.n_head_kv} * s.head_dim;
    auto matrix = [&](const std::string& name, uint64_t cols, uint64_t rows) {
        add(name, normal_values(rng, cols * rows, 0.0f, 0.1f), cols, rows, matrix_type);
    };
    auto norm = [&](const std::string& name, uint64_t n) { add(name, normal_values(rng, n, 1.0f, 0.1f), n); };
    matrix("token_embd.weight", s.n_embd, s.n_vocab);
    norm("output_norm.weight", s.n_embd);
    matrix("output.weight", s.n_embd, s.n_vocab);
    for (uint32_t l = 0; l < s.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        norm(p + "attn_norm.weight", s.n_embd);
        matrix(p + "attn_q.weight", s.n_embd, q_dim);
        matrix(p + "attn_k.weight", s.n_embd, kv_dim);
        matrix(p + "attn_v.weight", s.n_embd, kv_dim);
        matrix(p + "attn_output.weight", q_dim, s.n_embd);
        if (s.arch == APR_ARCH_QWEN2) {
            add(p + "attn_q.bias", normal_values(rng, q_dim, 0.0f, 0.1f), q_dim);
            add(p + "attn_k.bias", normal_values(rng, kv_dim, 0.0f, 0.1f), kv_dim);
            add(p + "attn_v.bias", normal_values(rng, kv_dim, 0.0f, 0.1f), kv_dim);
        }
        if (s.arch == APR_ARCH_QWEN3) {
            norm(p + "attn_q_norm.weight", s.head_dim);
            norm(p + "attn_k_norm.weight", s.head_dim);
        }
        norm(p + "ffn_norm.weight", s.n_embd);
        matrix(p + "ffn_gate.weight", s.n_embd, s.n_ff);
        matrix(p + "ffn_up.weight", s.n_embd, s.n_ff);
        matrix(p + "ffn_down.weight", s.n_ff, s.n_embd);
    }
}

inline const apr_model_view& TestModelView::view() {
    if (!view_stale_) return view_;
    view_stale_ = false;
    table_.clear();
    for (const auto& s : tensors_) {
        apr_tensor_view t{};
        t.name = s.name.c_str();
        t.type = s.type;
        t.n_dims = s.rows == 1 ? 1 : 2;
        t.ne[0] = s.cols;
        t.ne[1] = s.rows;
        t.ne[2] = t.ne[3] = 1;
        t.data = s.bytes.data();
        t.n_bytes = s.bytes.size();
        table_.push_back(t);
    }
    view_ = {};
    view_.struct_size = sizeof(apr_model_view);
    view_.arch = shape_.arch;
    view_.arch_name = shape_.arch == APR_ARCH_QWEN2 ? "qwen2" : shape_.arch == APR_ARCH_QWEN3 ? "qwen3" : "llama";
    view_.model_name = "test-model-view";
    view_.n_vocab = shape_.n_vocab;
    view_.n_ctx_train = 256;
    view_.n_embd = shape_.n_embd;
    view_.n_layer = shape_.n_layer;
    view_.n_head = shape_.n_head;
    view_.n_head_kv = shape_.n_head_kv;
    view_.head_dim = shape_.head_dim;
    view_.n_ff = shape_.n_ff;
    view_.n_rot = shape_.head_dim;
    view_.rope_type = shape_.rope_type;
    view_.rope_freq_base = shape_.rope_freq_base;
    view_.rope_freq_scale = shape_.rope_freq_scale;
    view_.rms_norm_eps = shape_.rms_norm_eps;
    view_.tied_embeddings = 0;
    view_.bos_token_id = 1;
    view_.eos_token_id = 2;
    view_.n_tensors = static_cast<uint32_t>(table_.size());
    view_.tensors = table_.data();
    return view_;
}

}  // namespace apr::test
