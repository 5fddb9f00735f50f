#include "vulkan_session.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "vulkan_copy_rate.hpp"
#include "vulkan_error.hpp"

namespace apr_vulkan {

namespace {

// Scores scratch budget: chunk * n_head * n_ctx floats must fit in it.
constexpr uint64_t kScoresBudgetBytes = 256ull << 20;
constexpr uint32_t kMaxChunk = 256;
constexpr uint32_t kMatMatTokens = 64;  // TN of mul_mm.comp
constexpr uint32_t kMatMatRows = 64;    // TM of mul_mm.comp
// ROWS of the mul_mat_vec variants (CMakeLists.txt): each invocation reads 2 rows at once, so
// several weight reads are in flight for the latency-bound decode mat-vecs. Measured on the H200
// (7B Q4_0 tg128): 2 rows 303 t/s, 4 rows 274, 8 rows 273 (4 rows with 64 invocations: 230).
// Measured again with the int8 32-element products (H200, tg128, APR_VULKAN_MV_ROWS experiment,
// commit bb23a32): Q4_0 2 rows 396 t/s, 4 rows 386, 8 rows 328; Q4_K 2 rows 344, 4 rows 348
// (within the noise): 2 stays.
// Even, so that the RoPE pairs (2i, 2i+1) a product rotates (FLAG_ROPE) share a workgroup.
constexpr uint32_t kMatVecRows = 2;
constexpr uint32_t kMatVecInvocations = 128;  // WG_SIZE of the mul_mat_vec variants (CMakeLists.txt)
constexpr uint32_t kMaxGroups = 65535;
constexpr uint32_t kAttentionSplit = 32;  // SPLIT of attention_split.comp
constexpr uint32_t kFusedNormMaxRow = 16384;  // MAX_N of rms_norm.comp's rounding variants

// Push-constant blocks, laid out exactly as the shaders' `Params` (addresses first: 8-byte aligned).
struct MulMatVecParams {  // mul_mat.comp: up to three products (segments) of one input
    uint64_t w[3], y[3], x, bias, up, x_scales, rope_table;
    uint32_t ne0, rows[3], n_tokens, flags, rope_pos, rope_head_dim;
};
static_assert(sizeof(MulMatVecParams) <= Context::kPushConstantBytes);
struct MulMatParams {  // mul_mm.comp
    uint64_t w, x, y, bias, up, x_scales, rope_table;
    uint32_t ne0, rows, n_tokens, flags;
};
constexpr uint32_t kFlagAccumulate = 1, kFlagBias = 2, kFlagSwiglu = 4, kFlagRope = 8;  // kFlagRope << segment
constexpr uint32_t kNormSlot0 = 4;       // NORM_SLOT0: floats before the sums of squares
struct GetRowsParams {
    uint64_t w, ids, y;
    uint32_t ne0, n_tokens;
};
struct RoundParams {
    uint64_t x, up, y, q8, q8_scales;
    uint32_t n, n_rows, flags;
};
struct RmsNormParams {
    uint64_t x, y, weight, rounded, q8, q8_scales;
    uint32_t n, n_rows;
    float eps;
};
struct RopeParams {
    uint64_t x, table;
    uint32_t n_tokens, n_heads, head_dim, row_stride, pos0, n_rot, neox;
};
struct AttentionParams {
    uint64_t q, k, v, out, scores;
    uint32_t n_tokens, pos0, n_head, n_head_kv, head_dim, n_ctx;
    float scale;
};
struct AttentionSplitParams {
    uint64_t q, k, v, part;
    uint32_t n_kv, n_splits, n_head, n_head_kv, head_dim;
    float scale;
};
struct AttentionSplitCombineParams {  // attention_split.comp's COMBINE variants
    uint64_t q, k, v, part;
    uint32_t n_kv, n_splits, n_head, n_head_kv, head_dim;
    float scale;
    uint64_t counters, out, rounded, q8, q8d;
};
struct AttentionCombineParams {
    uint64_t part, out;
    uint32_t n_splits, head_dim;
};
struct AttentionCombineRoundParams {
    uint64_t part, out, rounded, q8, q8_scales;
    uint32_t n_splits, head_dim;
};

uint32_t ceil_div(uint64_t a, uint64_t b) { return static_cast<uint32_t>((a + b - 1) / b); }

}  // namespace

Session::Session(const apr_model_view& view, uint32_t n_ctx)
    : model_(ctx_, view), view_(model_.view()), n_ctx_(n_ctx) {
    if (n_ctx == 0) throw BackendError(APR_ERR_INVALID_ARGUMENT, "n_ctx is 0");
    // Experiment knobs for the decode mat-vecs (mul_mat.comp's specialization constants):
    // APR_VULKAN_MV_WG invocations per workgroup (a power of two, 32..1024; the variants that
    // round a block in their last workgroup, _swiglu and _norm, keep at least 64, block_rounding.glsl's
    // ROUND_BLOCK_GROUPS), APR_VULKAN_MV_UNROLL blocks each invocation loads before using them (1..4).
    {
        auto knob = [](const char* name, uint32_t fallback, uint32_t lo, uint32_t hi) {
            const char* v = std::getenv(name);
            const long n = v && *v ? std::strtol(v, nullptr, 10) : 0;
            return n >= long(lo) && n <= long(hi) ? static_cast<uint32_t>(n) : fallback;
        };
        uint32_t wg = knob("APR_VULKAN_MV_WG", kMatVecInvocations, 32, 1024);
        if ((wg & (wg - 1)) != 0) wg = kMatVecInvocations;
        const uint32_t unroll = knob("APR_VULKAN_MV_UNROLL", 1, 1, 4);
        if (wg != kMatVecInvocations || unroll != 1) {
            auto rounds = [](const std::string& v) {
                return v.find("_swiglu") != std::string::npos || v.find("_norm") != std::string::npos;
            };
            ctx_.specialize([rounds](const std::string& v) { return v.rfind("mul_mat_vec_", 0) == 0 && rounds(v); },
                            {std::max<uint32_t>(wg, 64), unroll});
            ctx_.specialize([](const std::string& v) { return v.rfind("mul_mat_vec_", 0) == 0; }, {wg, unroll});
        }
    }
    const uint64_t E = view.n_embd, Q = uint64_t(view.n_head) * view.head_dim,
                   KV = uint64_t(view.n_head_kv) * view.head_dim, F = view.n_ff, V = view.n_vocab;
    uint64_t per_token_scores = uint64_t(view.n_head) * n_ctx * 4;
    chunk_ = static_cast<uint32_t>(std::clamp<uint64_t>(kScoresBudgetBytes / per_token_scores, 1, kMaxChunk));

    auto dev = [&](uint64_t floats) { return ctx_.create_buffer(floats * 4, MemoryKind::device_local); };
    x_ = dev(chunk_ * E);
    h_ = dev(chunk_ * E);
    q_ = dev(chunk_ * Q);
    att_ = dev(chunk_ * Q);
    g_ = dev(chunk_ * F);
    u_ = dev(chunk_ * F);
    scores_ = dev(uint64_t(chunk_) * view.n_head * n_ctx);
    att_parts_ = dev(uint64_t(view.n_head) * ceil_div(n_ctx, kAttentionSplit) * (view.head_dim + 4));
    for (uint32_t l = 0; l < view.n_layer; ++l) {
        k_cache_.push_back(dev(uint64_t(n_ctx) * KV));
        v_cache_.push_back(dev(uint64_t(n_ctx) * KV));
    }
    // Decode dispatches whose last workgroups may do the next small step: the attention merge
    // (attention_split.comp COMBINE), the SwiGLU rounding (gate_up_swiglu_rounded) and the
    // RMSNorm's preparation (mul_mat.comp NORM_ROUND, per quantization block). APR_VULKAN_TAIL_FUSION
    // picks them: "1" all, "0" none, or a list of "combine", "swiglu", "norm"; unset: none.
    // APR_VULKAN_NO_NORM_FUSION=1 drops "norm" (for A/B measurements).
    // Measured before on the H200 (7B Q4_0 tg128), with the norm then done whole by the last
    // workgroup: all off 388 t/s, combine + swiglu 387, all three 334.
    // Measured with the norm per quantization block (H200, 7B tg128, one run, interleaved, t/s):
    // Q4_0 main 391.3 / 392.1, off 391.6 / 390.4, norm 368.0 / 371.8, norm + swiglu 362.7 / 365.4;
    // Q4_K main 330.5 / 340.4, off 343.9 / 338.5, norm 329.8 / 340.9, norm + swiglu 320.3 / 312.8.
    // The serialized profile (APR_VULKAN_PROFILE=1, Q4_0) even gains a little with norm, 2.687 ms
    // of GPU time per step against 2.721 (attn_output+norm 12.2 us for 8.0 + 6.7, ffn_down+norm
    // 16.0 for 12.2 + 6.7, q/k/v with the scalar 15.2 for 13.7): run back to back, the dispatch
    // boundaries cost less than the profile's ~5 us each, while the last-arriver chain (fence,
    // atomic, coherent reads of the block, rounding) is paid in full at every product's tail.
    // So everything stays opt-in.
    // Also tried: q/k/v and gate/up rounding x * weight themselves from the f32 residual row, a
    // 32-value block in each invocation's registers (no producer work, no rms_norm dispatch at
    // all): q/k/v 67 us and gate/up 112 us (for 13.7 and 19.7), 143 t/s against 399: every
    // workgroup of 2 rows reads the whole f32 row and norm weight (32 KiB, 7x its weight bytes).
    // The other way to drop those dispatches, each product's workgroups building their rounded
    // input themselves (q/k/v and gate/up: the RMSNorm and its Q8 rounding from the f32 residual
    // row; ffn_down: the rounding of silu(gate) * up), was tried (commit 5f3e54c) and lost by far
    // on the H200 (7B Q4_0 tg128: 398 t/s without, 132 with 2 rows per workgroup, 267 with 8;
    // norm alone 302 at 8 rows, SwiGLU alone 328): the prologue's dependent phases (sum of
    // squares, block maxima, scales, quants, a barrier each) run before any weight is read, in
    // every workgroup, and made the products 12-70 us slower each (8 rows: q/k/v 25.9 us vs
    // 13.7, gate/up 41.2 vs 19.6, down 31.7 vs 12.1), far more than the ~5-7 us dispatches saved.
    const std::string tail = std::getenv("APR_VULKAN_TAIL_FUSION") ? std::getenv("APR_VULKAN_TAIL_FUSION") : "";
    const char* no_norm = std::getenv("APR_VULKAN_NO_NORM_FUSION");
    const bool norm_off = no_norm && std::strcmp(no_norm, "1") == 0;
    auto fuse = [&](const char* what) {
        if (norm_off && std::strcmp(what, "norm") == 0) return false;
        return tail == "1" || tail.find(what) != std::string::npos;
    };
    const uint64_t widest = std::max({E, Q, F});
    auto needs_rounding = [&](const DeviceTensor& t) {
        if (t.format->activation_rounding && !rounded_.count(t.format->activation_rounding))
            rounded_.emplace(t.format->activation_rounding, dev(chunk_ * widest));
    };
    needs_rounding(model_.output());
    for (const auto& l : model_.layers())
        for (const DeviceTensor* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) needs_rounding(*t);
    if (ctx_.int8_dot())
        for (const char* shader : {"round_q8_0", "round_q8_k"})
            if (rounded_.count(shader))
                int8_[shader] = {ctx_.create_buffer(chunk_ * widest, MemoryKind::device_local), dev(chunk_ * (widest / 32 + 1))};
    if (fuse("combine") && view.head_dim <= 4 * 128) {  // attention_split.comp's COMBINE: 128 invocations
        const std::vector<uint32_t> zeros(view.n_head, 0);
        attention_counters_ = ctx_.create_buffer(zeros.size() * 4, MemoryKind::device_local);
        ctx_.upload(attention_counters_, 0, zeros.data(), zeros.size() * 4);
    }
    const std::vector<uint32_t> zeros(F / 32 + 1, 0);
    if (ctx_.int8_dot() && fuse("swiglu")) {
        // Its own int8 copy (the gate/up input's is still being read while it is written), f32
        // copy and block counters.
        swiglu_int8_ = {ctx_.create_buffer(F, MemoryKind::device_local), dev(F / 32 + 1)};
        swiglu_rounded_ = dev(F);
        swiglu_counters_ = ctx_.create_buffer(zeros.size() * 4, MemoryKind::device_local);
        ctx_.upload(swiglu_counters_, 0, zeros.data(), zeros.size() * 4);
    }
    if (ctx_.int8_dot() && fuse("norm")) {
        // Its own rounded copies (the producer's input, in the same format, is still being read
        // while they are written), block counters, and the slots: eps, then the sums of squares.
        norm_int8_ = {ctx_.create_buffer(E, MemoryKind::device_local), dev(E / 32 + 1)};
        norm_rounded_ = dev(E);
        const std::vector<uint32_t> counters(E / 32 + 1, 0);
        norm_counters_ = ctx_.create_buffer(counters.size() * 4, MemoryKind::device_local);
        ctx_.upload(norm_counters_, 0, counters.data(), counters.size() * 4);
        std::vector<float> slots(kNormSlot0 + E / 32, 0.0f);
        slots[0] = view.rms_norm_eps;
        norm_slots_ = dev(slots.size());
        ctx_.upload(norm_slots_, 0, slots.data(), slots.size() * 4);
    }
    ids_ = ctx_.create_buffer(chunk_ * 4, MemoryKind::host_visible);
    logits_ = ctx_.create_buffer(chunk_ * V * 4, MemoryKind::host_visible);

    // RoPE angles in double: theta(p, i) = p * freq_scale * base^(-2i/n_rot) / rope_freqs[i].
    const uint32_t half = view.n_rot / 2;
    std::vector<float> table(uint64_t(n_ctx) * half * 2);
    const auto& freqs = model_.rope_freqs();
    for (uint32_t i = 0; i < half; ++i) {
        double inv_freq = std::pow(double(view.rope_freq_base), -2.0 * i / double(view.n_rot));
        if (!freqs.empty()) inv_freq /= double(freqs[i]);
        for (uint32_t p = 0; p < n_ctx; ++p) {
            double theta = double(p) * double(view.rope_freq_scale) * inv_freq;
            table[2 * (uint64_t(p) * half + i)] = static_cast<float>(std::cos(theta));
            table[2 * (uint64_t(p) * half + i) + 1] = static_cast<float>(std::sin(theta));
        }
    }
    rope_table_ = dev(table.size());
    // The profiler's timestamps belong to one recording at a time, so it records nothing ahead.
    const char* no_ahead = std::getenv("APR_VULKAN_NO_RECORD_AHEAD");
    record_ahead_ = !ctx_.profiler().enabled() && !(no_ahead && std::strcmp(no_ahead, "1") == 0);
    ctx_.upload(rope_table_, 0, table.data(), table.size() * sizeof(float));
    create_pipelines();
}

std::string Session::variant(const std::string& base, bool reduces) const {
    return reduces && ctx_.use_subgroups() ? base + "_sg" : base;
}

void Session::create_pipelines() {
    std::vector<const DeviceTensor*> matrices = {&model_.output()};
    for (const auto& l : model_.layers())
        for (const DeviceTensor* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) matrices.push_back(t);
    for (const DeviceTensor* t : matrices) {
        ctx_.pipeline(mat_vec_variant(*t));
        if (norm_counters_.address()) ctx_.pipeline(mat_vec_variant(*t) + "_ns");
        ctx_.pipeline(std::string("mul_mm_") + t->format->shader);
    }
    for (const auto& [shader, buffer] : rounded_) {
        ctx_.pipeline(shader);
        ctx_.pipeline(variant(std::string("rms_norm_") + shader, true));
    }
    for (const auto& l : model_.layers()) {
        if (swiglu_fusable(l)) ctx_.pipeline(mat_vec_variant(l.gate) + "_swiglu");
        if (swiglu_fusable(l) && norm_counters_.address()) ctx_.pipeline(mat_vec_variant(l.gate) + "_swiglu_ns");
        for (const DeviceTensor* t : {&l.wo, &l.down})
            if (norm_counters_.address() && int8_products(*t) && t->format->activation_rounding)
                ctx_.pipeline(mat_vec_variant(*t) + "_norm");
    }
    ctx_.pipeline(std::string("get_rows_") + model_.token_embd().format->shader);
    ctx_.pipeline(variant("rms_norm", true));
    ctx_.pipeline(variant("attention", true));
    ctx_.pipeline(variant("attention_split", true));
    if (attention_counters_.address() != 0) {
        ctx_.pipeline(variant("attention_split_combine", true));
        if (rounded_.count("round_q8_0")) ctx_.pipeline(variant("attention_split_combine_round_q8_0", true));
    }
    ctx_.pipeline("attention_combine");
    if (rounded_.count("round_q8_0")) ctx_.pipeline("attention_combine_round_q8_0");
    ctx_.pipeline("rope");
}

const Session::Int8Copy* Session::int8_copy(const char* rounding_shader) const {
    if (!rounding_shader) return nullptr;
    auto it = int8_.find(rounding_shader);
    return it == int8_.end() ? nullptr : &it->second;
}

bool Session::int8_products(const DeviceTensor& w) const {
    return w.format->int8_products && int8_copy(w.format->activation_rounding) != nullptr;
}

void Session::barrier(VkCommandBuffer cmd) {
    VkMemoryBarrier b{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    b.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &b, 0,
                         nullptr, 0, nullptr);
}

void Session::dispatch(VkCommandBuffer cmd, const std::string& name, const void* params, uint32_t bytes, uint32_t gx,
                       uint32_t gy, uint32_t gz, const char* role) {
    vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, ctx_.pipeline(name));
    vkCmdPushConstants(cmd, ctx_.pipeline_layout(), VK_SHADER_STAGE_COMPUTE_BIT, 0, bytes, params);
    vkCmdDispatch(cmd, gx, gy, gz);
    if (ctx_.profiler().enabled()) ctx_.profiler().mark(cmd, role ? name + " " + role : name);
}

void Session::get_rows(VkCommandBuffer cmd, const DeviceTensor& w, VkDeviceAddress y, uint32_t n_tokens) {
    GetRowsParams p{w.address, ids_.address(), y, static_cast<uint32_t>(w.ne0), n_tokens};
    dispatch(cmd, std::string("get_rows_") + w.format->shader, &p, sizeof p, ceil_div(w.ne0 / 4, 64), n_tokens, 1);
}

void Session::mul_mat(VkCommandBuffer cmd, const char* role, const DeviceTensor& w, VkDeviceAddress x, VkDeviceAddress y,
                      uint32_t n_tokens, const DeviceTensor* bias, bool accumulate, VkDeviceAddress swiglu_up,
                      const Prepared* prepared) {
    if (n_tokens == 1) {
        mul_mat_vec(cmd, x, {{role, &w, y, bias, false}}, accumulate, swiglu_up, -1, prepared);
        return;
    }
    MulMatParams p{w.address, input_for(w, x), y, 0, swiglu_up, 0, 0, static_cast<uint32_t>(w.ne0),
                   static_cast<uint32_t>(w.ne1), n_tokens, 0};
    if (accumulate) p.flags |= kFlagAccumulate;
    if (swiglu_up != 0) p.flags |= kFlagSwiglu;
    if (bias && bias->present()) {
        p.bias = bias->address;
        p.flags |= kFlagBias;
    }
    const uint32_t groups = ceil_div(p.rows, kMatMatRows);
    uint32_t gx = std::min<uint32_t>(groups, kMaxGroups), gy = ceil_div(groups, gx);
    dispatch(cmd, std::string("mul_mm_") + w.format->shader, &p, sizeof p, gx, gy, ceil_div(n_tokens, kMatMatTokens),
             role);
}

std::string Session::mat_vec_variant(const DeviceTensor& w) const {
    return variant(std::string("mul_mat_vec_") + w.format->shader + (int8_products(w) ? "_i8" : ""), true);
}

void Session::mul_mat_vec(VkCommandBuffer cmd, VkDeviceAddress x, const std::vector<Product>& products, bool accumulate,
                          VkDeviceAddress swiglu_up, int64_t rope_pos, const Prepared* prepared,
                          const DeviceTensor* then_norm) {
    for (size_t first = 0; first < products.size();) {
        // A segment joins the dispatch while it has the same shader (weight type, int8 or not) and
        // row length as the first, and neither has a bias (one bias pointer per dispatch).
        const DeviceTensor& w = *products[first].w;
        const std::string name = mat_vec_variant(w);
        auto has_bias = [](const Product& p) { return p.bias && p.bias->present(); };
        size_t end = first + 1;
        while (end < products.size() && end - first < 3 && !has_bias(products[first]) && !has_bias(products[end]) &&
               products[end].w->ne0 == w.ne0 && mat_vec_variant(*products[end].w) == name)
            ++end;
        MulMatVecParams p{};
        p.x = prepared && w.format->activation_rounding ? prepared->rounded : input_for(w, x);
        if (int8_products(w)) {  // the same rounded activation, as the int8 copy its rounding wrote beside it
            const Int8Copy* copy = prepared ? prepared->int8 : int8_copy(w.format->activation_rounding);
            p.x = copy->quants.address();
            p.x_scales = copy->scales.address();
        }
        p.up = swiglu_up;
        std::string shader = name;
        if (prepared && prepared->norm_slots) {  // never with swiglu_up: NORM_SLOTS is the `up` slot
            p.up = prepared->norm_slots;
            shader += "_ns";
        }
        p.ne0 = static_cast<uint32_t>(w.ne0);
        p.n_tokens = 1;
        if (accumulate) p.flags |= kFlagAccumulate;
        if (swiglu_up != 0) p.flags |= kFlagSwiglu;
        if (has_bias(products[first])) {
            p.bias = products[first].bias->address;
            p.flags |= kFlagBias;
        }
        uint32_t groups = 0;
        std::string label;
        for (size_t i = first; i < end; ++i) {
            const Product& pr = products[i];
            const uint32_t s = static_cast<uint32_t>(i - first);
            p.w[s] = pr.w->address;
            p.y[s] = pr.y;
            p.rows[s] = static_cast<uint32_t>(pr.w->ne1);
            groups += ceil_div(p.rows[s], kMatVecRows);
            if (pr.rope && rope_pos >= 0) {  // the caller checks the rope type (NORM pairs)
                p.flags |= kFlagRope << s;
                p.rope_table = rope_table_.address();
                p.rope_pos = static_cast<uint32_t>(rope_pos);
                p.rope_head_dim = view_.head_dim;
            }
            if (ctx_.profiler().enabled()) label += (label.empty() ? "" : "+") + std::string(pr.role);
        }
        if (then_norm) {  // norm_fusable: one product, int8, its own rounding format
            p.w[1] = norm_counters_.address();           // NR_COUNTERS
            p.w[2] = then_norm->address;                 // NR_WEIGHT
            p.y[1] = norm_slots_.address();              // NR_SLOTS
            p.y[2] = norm_rounded_.address();            // NR_ROUNDED
            p.rope_table = norm_int8_.quants.address();  // NR_QUANTS
            p.bias = norm_int8_.scales.address();        // NR_SCALES
            shader += "_norm";
            if (!label.empty()) label += "+norm";
        }
        uint32_t gx = std::min<uint32_t>(groups, kMaxGroups), gy = ceil_div(groups, gx);
        dispatch(cmd, shader, &p, sizeof p, gx, gy, 1, label.empty() ? nullptr : label.c_str());
        first = end;
    }
}

bool Session::norm_fusable(const DeviceTensor& producer, std::initializer_list<const DeviceTensor*> consumers) const {
    const char* r = producer.format->activation_rounding;
    if (!norm_counters_.address() || !r || !int8_products(producer) || producer.ne1 != view_.n_embd)
        return false;
    const uint64_t block = std::strcmp(r, "round_q8_k") == 0 ? 256 : 32;  // the _norm variants' formats
    if (view_.n_embd % block != 0 || block % kMatVecRows != 0) return false;
    for (const DeviceTensor* c : consumers)  // the _norm variants round to the producer's format
        if (!c->format->activation_rounding || std::strcmp(c->format->activation_rounding, r) != 0) return false;
    return true;
}

bool Session::swiglu_fusable(const LayerWeights& w) const {
    const char* r = w.down.format->activation_rounding;
    if (!swiglu_counters_.address() || !r || !int8_products(w.down) || !int8_products(w.gate) ||
        std::strcmp(r, w.gate.format->activation_rounding) != 0 || mat_vec_variant(w.gate) != mat_vec_variant(w.up) ||
        w.gate.ne0 != w.up.ne0 || w.gate.ne1 != w.up.ne1 || w.gate.ne1 != view_.n_ff)
        return false;
    const uint64_t block = std::strcmp(r, "round_q8_k") == 0 ? 256 : 32;  // the _swiglu variants' formats
    return w.gate.ne1 % block == 0 && block % kMatVecRows == 0;
}

void Session::gate_up_swiglu_rounded(VkCommandBuffer cmd, const LayerWeights& w, const Prepared* prepared) {
    const Int8Copy* in = prepared ? prepared->int8 : int8_copy(w.gate.format->activation_rounding);
    MulMatVecParams p{};
    p.w[0] = w.gate.address;
    p.w[1] = w.up.address;
    p.w[2] = swiglu_counters_.address();   // SR_COUNTERS
    p.y[0] = g_.address();
    p.y[1] = u_.address();
    p.y[2] = swiglu_rounded_.address();    // SR_ROUNDED
    p.x = in->quants.address();
    p.x_scales = in->scales.address();
    p.rope_table = swiglu_int8_.quants.address();  // SR_QUANTS
    p.bias = swiglu_int8_.scales.address();        // SR_SCALES
    p.ne0 = static_cast<uint32_t>(w.gate.ne0);
    p.rows[0] = p.rows[1] = static_cast<uint32_t>(w.gate.ne1);
    p.n_tokens = 1;
    std::string shader = mat_vec_variant(w.gate) + "_swiglu";
    if (prepared && prepared->norm_slots) {
        p.up = prepared->norm_slots;  // NORM_SLOTS
        shader += "_ns";
    }
    const uint32_t groups = 2 * ceil_div(p.rows[0], kMatVecRows);
    uint32_t gx = std::min<uint32_t>(groups, kMaxGroups), gy = ceil_div(groups, gx);
    dispatch(cmd, shader, &p, sizeof p, gx, gy, 1, "ffn_gate+ffn_up+swiglu_round");
}

void Session::round_activation(VkCommandBuffer cmd, VkDeviceAddress x, VkDeviceAddress swiglu_up, uint32_t n,
                               uint32_t n_tokens, std::initializer_list<const DeviceTensor*> consumers,
                               const char* done_by_norm) {
    std::vector<const char*> done;
    if (done_by_norm) done.push_back(done_by_norm);
    bool dispatched = false;
    for (const DeviceTensor* w : consumers) {
        const char* shader = w->format->activation_rounding;
        if (!shader || std::find(done.begin(), done.end(), shader) != done.end()) continue;
        done.push_back(shader);
        RoundParams p{x, swiglu_up, rounded_.at(shader).address(), 0, 0, n, n_tokens, swiglu_up != 0 ? 4u : 0u};
        if (const Int8Copy* copy = int8_copy(shader)) {
            p.q8 = copy->quants.address();
            p.q8_scales = copy->scales.address();
        }
        dispatch(cmd, shader, &p, sizeof p, ceil_div(n, 256), n_tokens, 1, swiglu_up != 0 ? "swiglu" : nullptr);
        dispatched = true;
    }
    if (dispatched) barrier(cmd);
}

VkDeviceAddress Session::input_for(const DeviceTensor& w, VkDeviceAddress x) const {
    return w.format->activation_rounding ? rounded_.at(w.format->activation_rounding).address() : x;
}

void Session::rms_norm(VkCommandBuffer cmd, VkDeviceAddress x, VkDeviceAddress y, const DeviceTensor& weight, uint32_t n,
                       uint32_t rows, const char* round_shader) {
    RmsNormParams p{x, y, weight.address, round_shader ? rounded_.at(round_shader).address() : 0, 0, 0, n, rows,
                    view_.rms_norm_eps};
    if (const Int8Copy* copy = int8_copy(round_shader)) {
        p.q8 = copy->quants.address();
        p.q8_scales = copy->scales.address();
    }
    uint32_t gx = std::min<uint32_t>(rows, kMaxGroups), gy = ceil_div(rows, gx);
    const std::string name = round_shader ? std::string("rms_norm_") + round_shader : std::string("rms_norm");
    dispatch(cmd, variant(name, true), &p, sizeof p, gx, gy, 1);
}

void Session::norm_and_round(VkCommandBuffer cmd, VkDeviceAddress x, VkDeviceAddress y, const DeviceTensor& weight,
                             uint32_t n, uint32_t rows, std::initializer_list<const DeviceTensor*> consumers) {
    const char* fused = nullptr;
    if (n % 4 == 0 && n <= kFusedNormMaxRow)
        for (const DeviceTensor* w : consumers)
            if (!fused) fused = w->format->activation_rounding;
    rms_norm(cmd, x, y, weight, n, rows, fused);
    barrier(cmd);
    round_activation(cmd, y, 0, n, rows, consumers, fused);
}

void Session::rope(VkCommandBuffer cmd, VkDeviceAddress x, uint32_t n_tokens, uint32_t n_heads, uint32_t row_stride,
                   uint32_t pos0) {
    RopeParams p{x, rope_table_.address(), n_tokens, n_heads, view_.head_dim, row_stride, pos0, view_.n_rot,
                 view_.rope_type == APR_ROPE_NEOX ? 1u : 0u};
    dispatch(cmd, "rope", &p, sizeof p, ceil_div(uint64_t(n_tokens) * n_heads * (view_.n_rot / 2), 64), 1, 1);
}

const char* Session::attention(VkCommandBuffer cmd, uint32_t layer, uint32_t n_tokens, uint32_t pos0,
                               const DeviceTensor& consumer) {
    const float scale = static_cast<float>(1.0 / std::sqrt(double(view_.head_dim)));
    if (n_tokens == 1) {
        const uint32_t n_kv = pos0 + 1, n_splits = ceil_div(n_kv, kAttentionSplit);
        const char* rounding = consumer.format->activation_rounding;
        const bool round_q8_0 = rounding && std::strcmp(rounding, "round_q8_0") == 0 && view_.head_dim % 32 == 0;
        if (attention_counters_.address() != 0) {  // split and merge in one dispatch
            AttentionSplitCombineParams sp{q_.address(), k_cache_[layer].address(), v_cache_[layer].address(),
                                           att_parts_.address(), n_kv, n_splits, view_.n_head, view_.n_head_kv,
                                           view_.head_dim, scale, attention_counters_.address(), att_.address(), 0, 0, 0};
            if (round_q8_0) {
                sp.rounded = rounded_.at(rounding).address();
                if (const Int8Copy* copy = int8_copy(rounding)) {
                    sp.q8 = copy->quants.address();
                    sp.q8d = copy->scales.address();
                }
            }
            dispatch(cmd, variant(round_q8_0 ? "attention_split_combine_round_q8_0" : "attention_split_combine", true),
                     &sp, sizeof sp, view_.n_head, n_splits, 1);
            return round_q8_0 ? rounding : nullptr;
        }
        AttentionSplitParams sp{q_.address(), k_cache_[layer].address(), v_cache_[layer].address(), att_parts_.address(),
                                n_kv, n_splits, view_.n_head, view_.n_head_kv, view_.head_dim, scale};
        dispatch(cmd, variant("attention_split", true), &sp, sizeof sp, view_.n_head, n_splits, 1);
        barrier(cmd);
        if (round_q8_0) {
            AttentionCombineRoundParams cp{att_parts_.address(), att_.address(), rounded_.at(rounding).address(), 0, 0,
                                           n_splits, view_.head_dim};
            if (const Int8Copy* copy = int8_copy(rounding)) {
                cp.q8 = copy->quants.address();
                cp.q8_scales = copy->scales.address();
            }
            dispatch(cmd, "attention_combine_round_q8_0", &cp, sizeof cp, view_.n_head, 1, 1);
            return rounding;
        }
        AttentionCombineParams cp{att_parts_.address(), att_.address(), n_splits, view_.head_dim};
        dispatch(cmd, "attention_combine", &cp, sizeof cp, view_.n_head, 1, 1);
        return nullptr;
    }
    AttentionParams p{q_.address(),  k_cache_[layer].address(), v_cache_[layer].address(), att_.address(),
                      scores_.address(), n_tokens, pos0, view_.n_head, view_.n_head_kv, view_.head_dim, n_ctx_, scale};
    dispatch(cmd, variant("attention", true), &p, sizeof p, view_.n_head, n_tokens, 1);
    return nullptr;
}

void Session::run_chunk(const int32_t* tokens, uint32_t T, uint32_t pos, bool logits_all, bool logits_last) {
    std::memcpy(ids_.mapped(), tokens, T * sizeof(int32_t));
    // A decode step (one token, logits of it) depends on nothing but pos: the tokens come through ids_.
    const bool decode = T == 1 && (logits_all || logits_last);
    uint32_t slot = 0;
    if (decode && ahead_pos_ == int64_t(pos)) {
        slot = ahead_slot_;
    } else {
        record(ctx_.begin(slot), T, pos, logits_all, logits_last);
        ctx_.end(slot);
    }
    ahead_pos_ = -1;
    ctx_.launch(slot);
    if (decode && record_ahead_ && pos + 1 < n_ctx_) {
        // The next decode step's command buffer, recorded while the GPU runs this one (host time
        // that otherwise sits between the steps); used if the next step is decode at pos + 1.
        const uint32_t next = slot ^ 1u;
        try {
            record(ctx_.begin(next), 1, pos + 1, false, true);
            ctx_.end(next);
            ahead_slot_ = next;
            ahead_pos_ = int64_t(pos) + 1;
        } catch (...) {
            ctx_.wait();
            throw;
        }
    }
    ctx_.wait();
}

void Session::record(VkCommandBuffer cmd, uint32_t T, uint32_t pos, bool logits_all, bool logits_last) {
    const uint32_t E = view_.n_embd, Q = view_.n_head * view_.head_dim, KV = view_.n_head_kv * view_.head_dim;
    ctx_.profiler().begin(cmd, T == 1);
    get_rows(cmd, model_.token_embd(), x_.address(), T);
    barrier(cmd);
    const bool logits = logits_all || logits_last;
    // Decode: the products into the residual stream (attn_output, ffn_down) may do the RMSNorm
    // that follows them (norm_fusable); `normed` says the previous one did.
    bool normed = false;
    // What a fused norm leaves for its products: x * weight rounded, and the scalar's parts.
    const Prepared norm_prepared{norm_rounded_.address(), &norm_int8_, norm_slots_.address()};
    const Prepared swiglu_prepared{swiglu_rounded_.address(), &swiglu_int8_, 0};
    for (uint32_t l = 0; l < view_.n_layer; ++l) {
        const LayerWeights& w = model_.layers()[l];
        const VkDeviceAddress k_at = k_cache_[l].address() + uint64_t(pos) * KV * 4;
        const VkDeviceAddress v_at = v_cache_[l].address() + uint64_t(pos) * KV * 4;
        if (!normed) norm_and_round(cmd, x_.address(), h_.address(), w.attn_norm, E, T, {&w.wq, &w.wk, &w.wv});
        // Decode with NORM RoPE (pairs 2i, 2i+1) and no q/k norm: the products rotate q and k.
        const bool rope_fused = T == 1 && view_.rope_type == APR_ROPE_NORM && !w.q_norm.present();
        const int64_t rope_at = rope_fused ? int64_t(pos) : -1;
        if (T == 1) {  // one dispatch for the three where their weight types agree
            mul_mat_vec(cmd, h_.address(),
                        {{"attn_q", &w.wq, q_.address(), &w.bq, true}, {"attn_k", &w.wk, k_at, &w.bk, true},
                         {"attn_v", &w.wv, v_at, &w.bv, false}},
                        false, 0, rope_at, normed ? &norm_prepared : nullptr);
        } else {
            mul_mat(cmd, "attn_q", w.wq, h_.address(), q_.address(), T, &w.bq, false);
            mul_mat(cmd, "attn_k", w.wk, h_.address(), k_at, T, &w.bk, false);
            mul_mat(cmd, "attn_v", w.wv, h_.address(), v_at, T, &w.bv, false);
        }
        barrier(cmd);
        if (w.q_norm.present()) {
            rms_norm(cmd, q_.address(), q_.address(), w.q_norm, view_.head_dim, T * view_.n_head);
            rms_norm(cmd, k_at, k_at, w.k_norm, view_.head_dim, T * view_.n_head_kv);
            barrier(cmd);
        }
        if (!rope_fused) {
            rope(cmd, q_.address(), T, view_.n_head, Q, pos);
            rope(cmd, k_at, T, view_.n_head_kv, KV, pos);
            barrier(cmd);
        }
        const char* att_rounded = attention(cmd, l, T, pos, w.wo);
        barrier(cmd);
        round_activation(cmd, att_.address(), 0, Q, T, {&w.wo}, att_rounded);
        normed = T == 1 && norm_fusable(w.wo, {&w.gate, &w.up});
        if (normed)
            mul_mat_vec(cmd, att_.address(), {{"attn_output", &w.wo, x_.address(), nullptr, false}}, true, 0, -1,
                        nullptr, &w.ffn_norm);
        else
            mul_mat(cmd, "attn_output", w.wo, att_.address(), x_.address(), T, nullptr, true);
        barrier(cmd);
        if (!normed) norm_and_round(cmd, x_.address(), h_.address(), w.ffn_norm, E, T, {&w.gate, &w.up});
        // The RMSNorm after this layer (the next layer's, or the output's), for the down projection to do.
        const bool last_layer = l + 1 == view_.n_layer;
        const LayerWeights* next = last_layer ? nullptr : &model_.layers()[l + 1];
        const DeviceTensor* next_norm = nullptr;
        if (T == 1 && (next ? norm_fusable(w.down, {&next->wq, &next->wk, &next->wv})
                            : logits && norm_fusable(w.down, {&model_.output()})))
            next_norm = next ? &next->attn_norm : &model_.output_norm();
        normed = next_norm != nullptr;
        if (T == 1 && swiglu_fusable(w)) {
            // gate and up, and the down projection's input rounded by their last workgroups
            gate_up_swiglu_rounded(cmd, w, normed ? &norm_prepared : nullptr);
            barrier(cmd);
            mul_mat_vec(cmd, g_.address(), {{"ffn_down", &w.down, x_.address(), nullptr, false}}, true, 0, -1,
                        &swiglu_prepared, next_norm);
            barrier(cmd);
            continue;
        }
        if (T == 1) {
            mul_mat_vec(cmd, h_.address(),
                        {{"ffn_gate", &w.gate, g_.address(), nullptr, false}, {"ffn_up", &w.up, u_.address(), nullptr, false}},
                        false, 0, -1, normed ? &norm_prepared : nullptr);
        } else {
            mul_mat(cmd, "ffn_gate", w.gate, h_.address(), g_.address(), T, nullptr, false);
            mul_mat(cmd, "ffn_up", w.up, h_.address(), u_.address(), T, nullptr, false);
        }
        barrier(cmd);
        // The down projection's input is silu(g) * u: computed by the rounding pass, or (F32
        // weights, no rounding) by the product itself as it reads g.
        round_activation(cmd, g_.address(), u_.address(), view_.n_ff, T, {&w.down});
        const bool gate_fused = w.down.format->activation_rounding == nullptr;
        if (next_norm)
            mul_mat_vec(cmd, g_.address(), {{"ffn_down", &w.down, x_.address(), nullptr, false}}, true,
                        gate_fused ? u_.address() : 0, -1, nullptr, next_norm);
        else
            mul_mat(cmd, "ffn_down", w.down, g_.address(), x_.address(), T, nullptr, true, gate_fused ? u_.address() : 0);
        barrier(cmd);
    }
    if (logits) {
        const uint32_t rows = logits_all ? T : 1;
        const VkDeviceAddress last = x_.address() + (logits_all ? 0 : uint64_t(T - 1) * E * 4);
        if (!normed) norm_and_round(cmd, last, h_.address(), model_.output_norm(), E, rows, {&model_.output()});
        mul_mat(cmd, "output", model_.output(), h_.address(), logits_.address(), rows, nullptr, false, 0,
                normed ? &norm_prepared : nullptr);
    }
}

void Session::step(const int32_t* tokens, uint32_t n_tokens, uint32_t pos, bool all_logits, float* logits) {
    if (!tokens || !logits) throw BackendError(APR_ERR_INVALID_ARGUMENT, "tokens or logits is NULL");
    if (n_tokens == 0) throw BackendError(APR_ERR_INVALID_ARGUMENT, "n_tokens is 0");
    if (pos > n_cached_)
        throw BackendError(APR_ERR_INVALID_ARGUMENT, "pos " + std::to_string(pos) + " is past the " +
                                                         std::to_string(n_cached_) + " cached positions");
    if (uint64_t(pos) + n_tokens > n_ctx_)
        throw BackendError(APR_ERR_INVALID_ARGUMENT, "pos " + std::to_string(pos) + " + " + std::to_string(n_tokens) +
                                                         " tokens exceeds n_ctx " + std::to_string(n_ctx_));
    for (uint32_t i = 0; i < n_tokens; ++i)
        if (tokens[i] < 0 || uint32_t(tokens[i]) >= view_.n_vocab)
            throw BackendError(APR_ERR_INVALID_ARGUMENT, "token " + std::to_string(tokens[i]) + " at index " +
                                                             std::to_string(i) + " is outside the vocabulary (" +
                                                             std::to_string(view_.n_vocab) + ")");
    n_cached_ = pos;  // rewind: everything from pos on is recomputed
    const uint64_t V = view_.n_vocab;
    for (uint32_t done = 0; done < n_tokens;) {
        uint32_t T = std::min(chunk_, n_tokens - done);
        bool last = done + T == n_tokens;
        try {
            run_chunk(tokens + done, T, pos + done, all_logits, last);
        } catch (...) {
            n_cached_ = pos + done;  // what the cache holds intact
            throw;
        }
        n_cached_ = pos + done + T;
        const float* rows = static_cast<const float*>(logits_.mapped());
        if (all_logits)
            std::memcpy(logits + uint64_t(done) * V, rows, uint64_t(T) * V * sizeof(float));
        else if (last)
            std::memcpy(logits, rows, V * sizeof(float));
        done += T;
    }
}

double Session::measure_copy_rate() {
    // The copies record into a command buffer slot: a step recorded ahead may sit in it.
    ahead_pos_ = -1;
    return apr_vulkan::measure_copy_rate(ctx_);
}

}  // namespace apr_vulkan
