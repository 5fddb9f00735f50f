#include "kv_cache.hpp"

#include <cstdlib>
#include <cstring>

#include "half_float.hpp"
#include "plugin_error.hpp"

namespace apr_cpu {

KvType kv_type_from_env() {
    const char* env = std::getenv("APR_CPU_KV_TYPE");
    if (!env || !*env || std::strcmp(env, "f32") == 0) return KvType::F32;
    if (std::strcmp(env, "f16") == 0) return KvType::F16;
    throw PluginError(APR_ERR_UNSUPPORTED, std::string("APR_CPU_KV_TYPE='") + env + "' is not one of f32, f16");
}

KvCache::KvCache(KvType type, int64_t n_layer, int64_t n_ctx, int64_t kv_dim) : type_(type), n_ctx_(n_ctx), kv_dim_(kv_dim) {
    const size_t n = static_cast<size_t>(n_layer) * static_cast<size_t>(n_ctx) * static_cast<size_t>(kv_dim);
    if (type == KvType::F32) {
        k32_.reset(new float[n]);
        v32_.reset(new float[n]);
    } else {
        k16_.reset(new uint16_t[n]);
        v16_.reset(new uint16_t[n]);
    }
}

void KvCache::store(int64_t layer, int64_t pos, const float* k, const float* v) {
    const size_t at = index(layer, pos, 0);
    if (type_ == KvType::F32) {
        std::memcpy(k32_.get() + at, k, static_cast<size_t>(kv_dim_) * sizeof(float));
        std::memcpy(v32_.get() + at, v, static_cast<size_t>(kv_dim_) * sizeof(float));
        return;
    }
    for (int64_t i = 0; i < kv_dim_; ++i) {
        k16_[at + i] = f32_to_fp16(k[i]);
        v16_[at + i] = f32_to_fp16(v[i]);
    }
}

float KvCache::dot_key(const KernelTable& k, int64_t layer, int64_t pos, int64_t offset, const float* q, int64_t n) const {
    const size_t at = index(layer, pos, offset);
    return type_ == KvType::F32 ? k.dot_f32(k32_.get() + at, q, n) : k.dot_f16(k16_.get() + at, q, n);
}

void KvCache::add_value(const KernelTable& k, int64_t layer, int64_t pos, int64_t offset, float weight, float* out, int64_t n) const {
    const size_t at = index(layer, pos, offset);
    if (type_ == KvType::F32) k.axpy_f32(weight, v32_.get() + at, out, n);
    else k.axpy_f16(weight, v16_.get() + at, out, n);
}

}  // namespace apr_cpu
