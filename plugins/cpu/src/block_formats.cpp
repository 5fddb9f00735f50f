#include "block_formats.hpp"

#include <apr/backend.h>

namespace apr_cpu {

const WeightTypeInfo* weight_type_info(uint32_t type) {
    static const WeightTypeInfo kF32{"F32", 1, 4, ActKind::F32};
    static const WeightTypeInfo kF16{"F16", 1, 2, ActKind::F16_ROUND};
    static const WeightTypeInfo kBF16{"BF16", 1, 2, ActKind::BF16_ROUND};
    static const WeightTypeInfo kQ4_0{"Q4_0", 32, sizeof(BlockQ4_0), ActKind::Q8_0};
    static const WeightTypeInfo kQ4_1{"Q4_1", 32, sizeof(BlockQ4_1), ActKind::Q8_1};
    static const WeightTypeInfo kQ5_0{"Q5_0", 32, sizeof(BlockQ5_0), ActKind::Q8_0};
    static const WeightTypeInfo kQ5_1{"Q5_1", 32, sizeof(BlockQ5_1), ActKind::Q8_1};
    static const WeightTypeInfo kQ8_0{"Q8_0", 32, sizeof(BlockQ8_0), ActKind::Q8_0};
    static const WeightTypeInfo kQ4_K{"Q4_K", 256, sizeof(BlockQ4_K), ActKind::Q8_K};
    static const WeightTypeInfo kQ5_K{"Q5_K", 256, sizeof(BlockQ5_K), ActKind::Q8_K};
    static const WeightTypeInfo kQ6_K{"Q6_K", 256, sizeof(BlockQ6_K), ActKind::Q8_K};
    switch (type) {
        case APR_TYPE_F32: return &kF32;
        case APR_TYPE_F16: return &kF16;
        case APR_TYPE_BF16: return &kBF16;
        case APR_TYPE_Q4_0: return &kQ4_0;
        case APR_TYPE_Q4_1: return &kQ4_1;
        case APR_TYPE_Q5_0: return &kQ5_0;
        case APR_TYPE_Q5_1: return &kQ5_1;
        case APR_TYPE_Q8_0: return &kQ8_0;
        case APR_TYPE_Q4_K: return &kQ4_K;
        case APR_TYPE_Q5_K: return &kQ5_K;
        case APR_TYPE_Q6_K: return &kQ6_K;
        default: return nullptr;
    }
}

size_t act_row_bytes(ActKind kind, int64_t n) {
    switch (kind) {
        case ActKind::F32:
        case ActKind::F16_ROUND:
        case ActKind::BF16_ROUND: return static_cast<size_t>(n) * sizeof(float);
        case ActKind::Q8_0: return static_cast<size_t>(n / 32) * sizeof(ActQ8_0);
        case ActKind::Q8_1: return static_cast<size_t>(n / 32) * sizeof(ActQ8_1);
        case ActKind::Q8_K: return static_cast<size_t>(n / 256) * sizeof(ActQ8_K);
    }
    return 0;
}

}  // namespace apr_cpu
