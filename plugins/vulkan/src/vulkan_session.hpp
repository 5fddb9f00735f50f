// One model open on the device: its weights, the KV cache for n_ctx positions, activation
// buffers for a chunk of tokens, and the forward pass recorded as one command buffer per chunk
// (a decode step is a single submission).
#pragma once

#include <apr/backend.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "vulkan_context.hpp"
#include "vulkan_model.hpp"

namespace apr_vulkan {

class Session {
public:
    // Throws BackendError (UNSUPPORTED for a model the shaders cannot run, OUT_OF_MEMORY, ...).
    Session(const apr_model_view& view, uint32_t n_ctx);

    // apr_backend_step's contract; throws BackendError.
    void step(const int32_t* tokens, uint32_t n_tokens, uint32_t pos, bool all_logits, float* logits);

    // The descriptor's measure_copy_rate on this session's device (vulkan_copy_rate.hpp).
    double measure_copy_rate();

private:
    // Submits tokens [0, n) at positions pos.. (recorded now, or ahead by the previous decode
    // step) and waits; logits rows land in logits_.
    void run_chunk(const int32_t* tokens, uint32_t n, uint32_t pos, bool logits_all, bool logits_last);
    // Records the forward pass of n tokens at positions pos.. into cmd (token ids read from ids_).
    void record(VkCommandBuffer cmd, uint32_t n, uint32_t pos, bool logits_all, bool logits_last);

    void barrier(VkCommandBuffer cmd);
    // The profile (APR_VULKAN_PROFILE=1) names the dispatch by its variant and `role`, if any.
    void dispatch(VkCommandBuffer cmd, const std::string& variant, const void* params, uint32_t bytes, uint32_t gx,
                  uint32_t gy, uint32_t gz, const char* role = nullptr);
    void get_rows(VkCommandBuffer cmd, const DeviceTensor& w, VkDeviceAddress y, uint32_t n_tokens);
    // y = w x (+ bias) for n_tokens tokens, added to y when `accumulate`; x is the unrounded
    // activation (the product reads input_for(w, x)). `role` ("attn_q") labels it in the profile.
    struct Prepared;
    // prepared: decode only (n_tokens 1), as mul_mat_vec's.
    void mul_mat(VkCommandBuffer cmd, const char* role, const DeviceTensor& w, VkDeviceAddress x, VkDeviceAddress y,
                 uint32_t n_tokens, const DeviceTensor* bias, bool accumulate, VkDeviceAddress swiglu_up = 0,
                 const Prepared* prepared = nullptr);
    // One output of decode products that share their input.
    struct Product {
        const char* role;
        const DeviceTensor* w;
        VkDeviceAddress y;
        const DeviceTensor* bias;
        bool rope;  // rotated for rope_pos (NORM RoPE, decode), as rope() would
    };
    // Decode (one token) products of the same input x (unrounded, as mul_mat's), consecutive
    // ones with the same shader merged into one dispatch (mul_mat.comp's segments, three at most).
    // prepared: the rounded input a fused producer left (its format, that of every product
    // here), read instead of round_activation's; with norm_slots the products multiply their
    // results by the RMSNorm scalar (mul_mat.comp's NORM_SCALE variants, suffix _ns).
    struct Int8Copy;
    void mul_mat_vec(VkCommandBuffer cmd, VkDeviceAddress x, const std::vector<Product>& products, bool accumulate,
                     VkDeviceAddress swiglu_up, int64_t rope_pos, const Prepared* prepared = nullptr,
                     const DeviceTensor* then_norm = nullptr);
    // then_norm (the norm's weight): the one product, into the residual x_, also prepares the
    // RMSNorm's products (mul_mat.comp's NORM_ROUND, per quantization block): x_ * weight
    // rounded into norm_rounded_ / norm_int8_ and the sums of squares into norm_slots_, read
    // through norm_prepared; only where norm_fusable(product, consumers). h_ is not written.
    bool norm_fusable(const DeviceTensor& producer, std::initializer_list<const DeviceTensor*> consumers) const;
    // Decode: whether a layer's gate/up can round silu(gate) * up for the down projection
    // themselves (mul_mat.comp's SWIGLU_ROUND: int8 products throughout, one rounding format),
    // and that dispatch (into swiglu_int8_ / swiglu_rounded_).
    bool swiglu_fusable(const LayerWeights& w) const;
    void gate_up_swiglu_rounded(VkCommandBuffer cmd, const LayerWeights& w, const Prepared* prepared);
    std::string mat_vec_variant(const DeviceTensor& w) const;
    // Rounds activation x ([n_tokens][n] f32; silu(x) * up elementwise when swiglu_up != 0) once
    // for each distinct dot-product format among `consumers` (the matrices about to multiply it)
    // into that format's scratch buffer, except the format `done_by_norm` (already rounded by the
    // producer: a fused RMSNorm or attention combine), then places a barrier if anything was dispatched.
    void round_activation(VkCommandBuffer cmd, VkDeviceAddress x, VkDeviceAddress swiglu_up, uint32_t n,
                          uint32_t n_tokens, std::initializer_list<const DeviceTensor*> consumers,
                          const char* done_by_norm = nullptr);
    // Where a product with w reads the activation x from: round_activation's copy, or x itself
    // when w's products take activations unrounded (F32).
    VkDeviceAddress input_for(const DeviceTensor& w, VkDeviceAddress x) const;
    void rms_norm(VkCommandBuffer cmd, VkDeviceAddress x, VkDeviceAddress y, const DeviceTensor& weight, uint32_t n,
                  uint32_t rows, const char* round_shader = nullptr);
    // rms_norm of x into y (distinct buffers) followed by the activation rounding `consumers`
    // need, the first format fused into the norm's dispatch; ends with a barrier.
    void norm_and_round(VkCommandBuffer cmd, VkDeviceAddress x, VkDeviceAddress y, const DeviceTensor& weight,
                        uint32_t n, uint32_t rows, std::initializer_list<const DeviceTensor*> consumers);
    void rope(VkCommandBuffer cmd, VkDeviceAddress x, uint32_t n_tokens, uint32_t n_heads, uint32_t row_stride,
              uint32_t pos0);
    // Prefill: one workgroup per head and token; decode: split along the context, then combined.
    // Returns the activation rounding it did for `consumer` (decode may fuse round_q8_0 into the
    // combine), or null.
    const char* attention(VkCommandBuffer cmd, uint32_t layer, uint32_t n_tokens, uint32_t pos0,
                          const DeviceTensor& consumer);
    std::string variant(const std::string& base, bool reduces) const;
    void create_pipelines();

    Context ctx_;
    DeviceModel model_;
    const apr_model_view& view_;
    uint32_t n_ctx_;
    uint32_t chunk_;     // most tokens one submission handles
    uint32_t n_cached_ = 0;
    // Record-ahead (run_chunk): off while profiling or with APR_VULKAN_NO_RECORD_AHEAD=1.
    bool record_ahead_ = true;
    int64_t ahead_pos_ = -1;  // the position the command buffer in ahead_slot_ decodes, or -1
    uint32_t ahead_slot_ = 0;

    Buffer x_, h_, q_, att_, g_, u_, scores_, rope_table_;
    Buffer att_parts_;  // decode attention's per-split partial results (attention_split.comp)
    std::vector<Buffer> k_cache_, v_cache_;  // per layer [n_ctx][n_head_kv * head_dim] f32
    // Per activation-rounding shader ("round_q8_k"): the rounded activation, [chunk][widest row].
    std::map<std::string, Buffer> rounded_;
    // With int8 products (Context::int8_dot), per Q8 rounding shader ("round_q8_0", "round_q8_k"):
    // its output again as int8 quants [chunk][widest row] and their block scales [chunk][blocks] f32.
    struct Int8Copy {
        Buffer quants, scales;
    };
    std::map<std::string, Int8Copy> int8_;
    Int8Copy swiglu_int8_;                       // gate_up_swiglu_rounded's output [n_ff]
    Buffer swiglu_rounded_, swiglu_counters_;
    // NORM_ROUND's output: x * norm weight rounded ([n_embd] f32 and int8 copy), its block
    // counters, and NORM_SCALE's slots (eps, sums of squares per 32 values).
    Int8Copy norm_int8_;
    Buffer norm_rounded_, norm_counters_, norm_slots_;
    struct Prepared {
        VkDeviceAddress rounded;  // f32 rounded values
        const Int8Copy* int8;     // their int8 copy
        VkDeviceAddress norm_slots;  // 0, or the RMSNorm scalar's slots
    };
    Buffer attention_counters_;  // attention_split.comp COMBINE's finished splits per head
    // The int8 copy a rounding shader writes, or null.
    const Int8Copy* int8_copy(const char* rounding_shader) const;
    bool int8_products(const DeviceTensor& w) const;
    Buffer ids_;     // host-visible [chunk] int32
    Buffer logits_;  // host-visible [chunk][n_vocab] f32
};

}  // namespace apr_vulkan
