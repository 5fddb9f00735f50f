#include "weight_repack.hpp"

#include <cstdlib>
#include <cstring>

#include "kernels.hpp"

namespace apr_cuda {
namespace {

bool regroup_q4_k() {
    static const bool on = [] {
        const char* v = std::getenv("APR_CUDA_Q4K_REGROUP");
        return !(v && v[0] == '0');
    }();
    return on;
}

// Q4_0 block: fp16 d, 16 quant bytes (18 bytes). A run of 8 becomes d0..d7, q0..q7.
void regroup_q4_0(const uint8_t* src, uint8_t* dst, size_t bytes) {
    constexpr size_t kBlock = 18, kRun = 8 * kBlock;
    const size_t runs = bytes / kRun;  // rows are whole runs
    for (size_t r = 0; r < runs; ++r) {
        const uint8_t* s = src + r * kRun;
        uint8_t* d = dst + r * kRun;
        for (int j = 0; j < 8; ++j) {
            std::memcpy(d + 2 * j, s + kBlock * j, 2);
            std::memcpy(d + 16 + 16 * j, s + kBlock * j + 2, 16);
        }
    }
}

// Q4_K block (fp16 d, fp16 dmin, 12 bytes of packed 6-bit scales and mins, 128 quant bytes in
// which sub-blocks 2i and 2i+1 are the low and high nibbles of bytes 32i..32i+31) into
// FormatQ4_Kx8's order (weight_formats.cuh): the same bits, moved so that one 16-byte segment
// is one whole sub-block and a sub-block's scale and min are one byte plus 4 bits of one word.
void regroup_q4_k_blocks(const uint8_t* src, uint8_t* dst, size_t bytes) {
    constexpr size_t kBlock = 144;
    for (size_t b = 0; b < bytes / kBlock; ++b) {
        const uint8_t* s = src + b * kBlock;
        uint8_t* d = dst + b * kBlock;
        std::memcpy(d, s, 4);  // d, dmin
        const uint8_t* sm = s + 4;
        uint32_t high = 0;
        for (int j = 0; j < 8; ++j) {
            int sc, mn;  // k_scale_min's unpacking
            if (j < 4) {
                sc = sm[j] & 63;
                mn = sm[j + 4] & 63;
            } else {
                sc = (sm[j + 4] & 15) | ((sm[j - 4] >> 6) << 4);
                mn = (sm[j + 4] >> 4) | ((sm[j] >> 6) << 4);
            }
            d[8 + j] = uint8_t((sc & 15) | (mn & 15) << 4);
            high |= uint32_t((sc >> 4) | (mn >> 4) << 2) << (4 * j);
        }
        for (int i = 0; i < 4; ++i) d[4 + i] = uint8_t(high >> (8 * i));  // little-endian word
        const uint8_t* qs = s + 16;
        for (int j = 0; j < 8; ++j) {
            const uint8_t* pair = qs + 32 * (j >> 1);
            const int shift = 4 * (j & 1);
            uint8_t* seg = d + 16 + 16 * j;
            for (int k = 0; k < 16; ++k)
                seg[k] = uint8_t(((pair[k] >> shift) & 15) | ((pair[k + 16] >> shift) & 15) << 4);
        }
    }
}

}  // namespace

uint32_t device_weight_type(uint32_t type, uint32_t cols) {
    if (type == APR_TYPE_Q4_0 && cols % 256 == 0) return kTypeQ4_0x8;
    if (type == APR_TYPE_Q4_K && regroup_q4_k()) return kTypeQ4_Kx8;
    return type;
}

void repack_rows(uint32_t type, uint32_t cols, const uint8_t* src, uint8_t* dst, size_t rows, size_t row_bytes) {
    const uint32_t to = device_weight_type(type, cols);
    if (to == kTypeQ4_0x8)
        regroup_q4_0(src, dst, rows * row_bytes);
    else if (to == kTypeQ4_Kx8)
        regroup_q4_k_blocks(src, dst, rows * row_bytes);
    else
        std::memcpy(dst, src, rows * row_bytes);
}

}  // namespace apr_cuda
