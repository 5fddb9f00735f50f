#include "weight_repack.hpp"

#include <cstring>

#include "kernels.hpp"

namespace apr_cuda {

uint32_t device_weight_type(uint32_t type, uint32_t cols) {
    if (type == APR_TYPE_Q4_0 && cols % 256 == 0) return kTypeQ4_0x8;
    return type;
}

void repack_rows(uint32_t type, uint32_t cols, const uint8_t* src, uint8_t* dst, size_t rows, size_t row_bytes) {
    if (device_weight_type(type, cols) != kTypeQ4_0x8) {
        std::memcpy(dst, src, rows * row_bytes);
        return;
    }
    // Q4_0 block: fp16 d, 16 quant bytes (18 bytes). A run of 8 becomes d0..d7, q0..q7.
    constexpr size_t kBlock = 18, kRun = 8 * kBlock;
    const size_t runs = size_t(rows) * row_bytes / kRun;  // rows are whole runs
    for (size_t r = 0; r < runs; ++r) {
        const uint8_t* s = src + r * kRun;
        uint8_t* d = dst + r * kRun;
        for (int j = 0; j < 8; ++j) {
            std::memcpy(d + 2 * j, s + kBlock * j, 2);
            std::memcpy(d + 16 + 16 * j, s + kBlock * j + 2, 16);
        }
    }
}

}  // namespace apr_cuda
