#include "vulkan_model.hpp"

#include <cstring>

#include "vulkan_error.hpp"

namespace apr_vulkan {

namespace {

const WeightFormat kFormats[] = {
    {APR_TYPE_F32, "F32", "f32", 4, 16, nullptr, false},
    {APR_TYPE_F16, "F16", "f16", 4, 8, "round_f16", false},
    {APR_TYPE_BF16, "BF16", "bf16", 4, 8, "round_bf16", false},
    {APR_TYPE_Q8_0, "Q8_0", "q8_0", 32, 34, "round_q8_0", true},
    {APR_TYPE_Q4_0, "Q4_0", "q4_0", 32, 18, "round_q8_0", true},
    {APR_TYPE_Q4_1, "Q4_1", "q4_1", 32, 20, "round_q8_0", false},  // Q8_1: the same values, plus a sum
    {APR_TYPE_Q5_0, "Q5_0", "q5_0", 32, 22, "round_q8_0", false},
    {APR_TYPE_Q5_1, "Q5_1", "q5_1", 32, 24, "round_q8_0", false},
    {APR_TYPE_Q4_K, "Q4_K", "q4_k", 256, 144, "round_q8_k", true},
    {APR_TYPE_Q5_K, "Q5_K", "q5_k", 256, 176, "round_q8_k", false},
    {APR_TYPE_Q6_K, "Q6_K", "q6_k", 256, 210, "round_q8_k", true},
};

[[noreturn]] void unsupported(const apr_model_view& view, const std::string& what) {
    throw BackendError(APR_ERR_UNSUPPORTED, std::string("model ") + (view.model_name ? view.model_name : "?") + ": " + what);
}

std::string shape_text(uint64_t ne0, uint64_t ne1) { return "[" + std::to_string(ne0) + ", " + std::to_string(ne1) + "]"; }

}  // namespace

const WeightFormat* weight_format(uint32_t type) {
    for (const auto& f : kFormats)
        if (f.type == type) return &f;
    return nullptr;
}

DeviceTensor DeviceModel::load(Context& ctx, const std::string& name, uint64_t ne0, uint64_t ne1, bool matrix,
                               bool optional) {
    const apr_tensor_view* t = apr_model_find_tensor(&view_, name.c_str());
    if (!t) {
        if (optional) return {};
        unsupported(view_, "tensor " + name + " is missing");
    }
    uint64_t t1 = t->n_dims >= 2 ? t->ne[1] : 1;
    if (t->ne[0] != ne0 || t1 != ne1 || t->ne[2] > 1 || t->ne[3] > 1)
        unsupported(view_, "tensor " + name + " has shape " + shape_text(t->ne[0], t1) + ", expected " +
                               shape_text(ne0, ne1));
    const WeightFormat* format = weight_format(t->type);
    if (!format) unsupported(view_, "tensor " + name + " has type id " + std::to_string(t->type) + ", which the Vulkan backend cannot decode");
    if (!matrix && t->type != APR_TYPE_F32)
        unsupported(view_, "tensor " + name + " is " + format->name + "; norm weights and biases must be F32");
    if (ne0 % format->block_elements != 0)
        unsupported(view_, "tensor " + name + " (" + format->name + ") has rows of " + std::to_string(ne0) +
                               " elements, not a multiple of " + std::to_string(format->block_elements));
    uint64_t bytes = ne1 * (ne0 / format->block_elements) * format->block_bytes;
    if (t->n_bytes < bytes || !t->data)
        unsupported(view_, "tensor " + name + " holds " + std::to_string(t->n_bytes) + " bytes, " + format->name + " " +
                               shape_text(ne0, ne1) + " needs " + std::to_string(bytes));
    if (bytes >= (1ull << 32))
        unsupported(view_, "tensor " + name + " is " + std::to_string(bytes) + " bytes; the shaders address at most 4 GiB per tensor");

    DeviceTensor d;
    d.format = format;
    d.ne0 = ne0;
    d.ne1 = ne1;
    for (const auto& [data, address] : uploaded_)
        if (data == t->data) d.address = address;
    if (!d.present()) {
        Buffer b = ctx.create_buffer(bytes, MemoryKind::device_local);
        ctx.upload(b, 0, t->data, bytes);
        d.address = b.address();
        bytes_ += bytes;
        uploaded_.emplace_back(t->data, d.address);
        storage_.push_back(std::move(b));
    }
    return d;
}

DeviceModel::DeviceModel(Context& ctx, const apr_model_view& view) : view_(view) {
    if (view.arch != APR_ARCH_LLAMA && view.arch != APR_ARCH_QWEN2 && view.arch != APR_ARCH_QWEN3)
        unsupported(view, std::string("architecture ") + (view.arch_name ? view.arch_name : "?") + " (id " +
                              std::to_string(view.arch) + ") is not llama, qwen2 or qwen3");
    if (view.rope_type != APR_ROPE_NORM && view.rope_type != APR_ROPE_NEOX)
        unsupported(view, "rope type " + std::to_string(view.rope_type));
    if (view.n_head == 0 || view.n_head_kv == 0 || view.n_head % view.n_head_kv != 0)
        unsupported(view, "n_head " + std::to_string(view.n_head) + " is not a multiple of n_head_kv " +
                              std::to_string(view.n_head_kv));
    if (view.head_dim == 0 || view.head_dim > 256 || view.head_dim % 4 != 0)
        unsupported(view, "head_dim " + std::to_string(view.head_dim) + " (the attention shader takes multiples of 4 up to 256)");
    if (view.n_rot != view.head_dim || view.n_rot % 2 != 0)
        unsupported(view, "n_rot " + std::to_string(view.n_rot) + " differs from head_dim " + std::to_string(view.head_dim));
    if (view.n_embd % 4 != 0 || view.n_ff % 4 != 0 || view.n_layer == 0 || view.n_vocab == 0)
        unsupported(view, "n_embd " + std::to_string(view.n_embd) + " / n_ff " + std::to_string(view.n_ff) +
                              " must be non-zero multiples of 4");

    const uint64_t E = view.n_embd, Q = uint64_t(view.n_head) * view.head_dim,
                   KV = uint64_t(view.n_head_kv) * view.head_dim, F = view.n_ff, V = view.n_vocab;
    token_embd_ = load(ctx, "token_embd.weight", E, V, true, false);
    output_norm_ = load(ctx, "output_norm.weight", E, 1, false, false);
    output_ = load(ctx, "output.weight", E, V, true, false);
    const bool qwen2 = view.arch == APR_ARCH_QWEN2, qwen3 = view.arch == APR_ARCH_QWEN3;
    for (uint32_t l = 0; l < view.n_layer; ++l) {
        std::string p = "blk." + std::to_string(l) + ".";
        LayerWeights w;
        w.attn_norm = load(ctx, p + "attn_norm.weight", E, 1, false, false);
        w.wq = load(ctx, p + "attn_q.weight", E, Q, true, false);
        w.wk = load(ctx, p + "attn_k.weight", E, KV, true, false);
        w.wv = load(ctx, p + "attn_v.weight", E, KV, true, false);
        w.wo = load(ctx, p + "attn_output.weight", Q, E, true, false);
        w.ffn_norm = load(ctx, p + "ffn_norm.weight", E, 1, false, false);
        w.gate = load(ctx, p + "ffn_gate.weight", E, F, true, false);
        w.up = load(ctx, p + "ffn_up.weight", E, F, true, false);
        w.down = load(ctx, p + "ffn_down.weight", F, E, true, false);
        if (qwen2) {  // qwen2's projection biases, used where the file has them
            w.bq = load(ctx, p + "attn_q.bias", Q, 1, false, true);
            w.bk = load(ctx, p + "attn_k.bias", KV, 1, false, true);
            w.bv = load(ctx, p + "attn_v.bias", KV, 1, false, true);
        }
        if (qwen3) {
            w.q_norm = load(ctx, p + "attn_q_norm.weight", view.head_dim, 1, false, false);
            w.k_norm = load(ctx, p + "attn_k_norm.weight", view.head_dim, 1, false, false);
        }
        layers_.push_back(w);
    }
    if (const apr_tensor_view* f = apr_model_find_tensor(&view, "rope_freqs.weight")) {
        if (f->type != APR_TYPE_F32 || f->ne[0] != view.n_rot / 2 || f->n_bytes < f->ne[0] * 4)
            unsupported(view, "rope_freqs.weight must be F32 [" + std::to_string(view.n_rot / 2) + "]");
        rope_freqs_.resize(view.n_rot / 2);
        std::memcpy(rope_freqs_.data(), f->data, rope_freqs_.size() * sizeof(float));
    }
}

}  // namespace apr_vulkan
