// The attention KV cache of one session: for every layer and position, the rotated key and the
// value of each KV head. f32 by default (what llama.cpp's reference run used); f16 halves its
// memory and the bytes attention reads per position (APR_CPU_KV_TYPE=f16). Allocated
// uninitialized: a position's pages are touched only when the position is first written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels.hpp"

namespace apr_cpu {

enum class KvType { F32, F16 };

// The type APR_CPU_KV_TYPE asks for (f32 when unset); throws PluginError for other values.
KvType kv_type_from_env();

class KvCache {
public:
    KvCache(KvType type, int64_t n_layer, int64_t n_ctx, int64_t kv_dim);

    // Writes the key and value rows (kv_dim floats each) of one position.
    void store(int64_t layer, int64_t pos, const float* k, const float* v);
    // q . key[layer][pos][offset .. offset + n)
    float dot_key(const KernelTable& k, int64_t layer, int64_t pos, int64_t offset, const float* q, int64_t n) const;
    // out += weight * value[layer][pos][offset .. offset + n)
    void add_value(const KernelTable& k, int64_t layer, int64_t pos, int64_t offset, float weight, float* out, int64_t n) const;

    KvType type() const { return type_; }

private:
    size_t index(int64_t layer, int64_t pos, int64_t offset) const {
        return (static_cast<size_t>(layer) * static_cast<size_t>(n_ctx_) + static_cast<size_t>(pos)) * static_cast<size_t>(kv_dim_) +
               static_cast<size_t>(offset);
    }
    KvType type_;
    int64_t n_ctx_, kv_dim_;
    std::unique_ptr<float[]> k32_, v32_;
    std::unique_ptr<uint16_t[]> k16_, v16_;
};

}  // namespace apr_cpu
