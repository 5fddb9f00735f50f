// The model on the device: the view validated against what the shaders can run, and every
// weight uploaded once, exactly as stored in the file (quantized blocks stay blocks).
#pragma once

#include <apr/backend.h>

#include <cstdint>
#include <string>
#include <vector>

#include "vulkan_context.hpp"

namespace apr_vulkan {

// How a weight type is laid out and which shader variants decode it.
struct WeightFormat {
    uint32_t type;
    const char* name;         // "Q4_K"
    const char* shader;       // variant suffix, "q4_k"
    uint32_t block_elements;  // the shaders' block: 4 for float types, else ggml's block size
    uint32_t block_bytes;
    // The shader (round_activation.comp variant) rounding activations to the format llama.cpp's
    // CPU backend multiplies this type with ("round_q8_k"); null for F32, whose products take
    // the activation as it is.
    const char* activation_rounding;
    // Whether a mul_mat_vec_<shader>_i8 variant exists (Q8_0-rounded activations as int8).
    bool int8_products;
};
// Null when the backend cannot decode `type`.
const WeightFormat* weight_format(uint32_t type);

// A tensor living in device memory.
struct DeviceTensor {
    const WeightFormat* format = nullptr;
    uint64_t ne0 = 0;  // row length
    uint64_t ne1 = 1;  // rows
    VkDeviceAddress address = 0;  // 0: absent (optional tensors)
    bool present() const { return address != 0; }
};

struct LayerWeights {
    DeviceTensor attn_norm, wq, wk, wv, wo, ffn_norm, gate, up, down;
    DeviceTensor bq, bk, bv;            // qwen2
    DeviceTensor q_norm, k_norm;        // qwen3
};

class DeviceModel {
public:
    // Validates `view` (throws BackendError APR_ERR_UNSUPPORTED naming the culprit) and uploads it.
    DeviceModel(Context& ctx, const apr_model_view& view);

    const apr_model_view& view() const { return view_; }
    const std::vector<LayerWeights>& layers() const { return layers_; }
    const DeviceTensor& token_embd() const { return token_embd_; }
    const DeviceTensor& output_norm() const { return output_norm_; }
    const DeviceTensor& output() const { return output_; }
    // rope_freqs.weight (n_rot/2 divisors), empty when the model has none.
    const std::vector<float>& rope_freqs() const { return rope_freqs_; }
    uint64_t bytes_on_device() const { return bytes_; }

private:
    DeviceTensor load(Context& ctx, const std::string& name, uint64_t ne0, uint64_t ne1, bool matrix, bool optional);

    apr_model_view view_;
    std::vector<Buffer> storage_;
    std::vector<std::pair<const void*, VkDeviceAddress>> uploaded_;  // file bytes -> device copy (tied embeddings)
    std::vector<LayerWeights> layers_;
    DeviceTensor token_embd_, output_norm_, output_;
    std::vector<float> rope_freqs_;
    uint64_t bytes_ = 0;
};

}  // namespace apr_vulkan
