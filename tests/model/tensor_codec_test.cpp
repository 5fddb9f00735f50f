// The core's definition of what the bytes of each tensor type mean: fp16/bf16 conversion,
// hand-built blocks laid out as ggml documents them, and quantize -> dequantize round trips.
#include <apr/backend.h>

#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "model/ggml_type.hpp"
#include "model/tensor_codec.hpp"

using namespace apr;

namespace {

void put_u16(std::vector<uint8_t>& b, size_t at, uint16_t v) { std::memcpy(b.data() + at, &v, 2); }

std::vector<float> dequant(uint32_t type, const std::vector<uint8_t>& bytes, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n));
    dequantize_row(type, bytes.data(), out.data(), n);
    return out;
}

double relative_rms_error(const std::vector<float>& ref, const std::vector<float>& got) {
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        num += (double(ref[i]) - got[i]) * (double(ref[i]) - got[i]);
        den += double(ref[i]) * ref[i];
    }
    return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("fp16 conversion is exact and rounds to nearest even", "[model][codec]") {
    CHECK(f32_to_fp16(1.0f) == 0x3c00);
    CHECK(f32_to_fp16(-2.0f) == 0xc000);
    CHECK(f32_to_fp16(65504.0f) == 0x7bff);
    CHECK(f32_to_fp16(65519.0f) == 0x7bff);
    CHECK(f32_to_fp16(65520.0f) == 0x7c00);  // the tie rounds up to infinity
    CHECK(f32_to_fp16(std::ldexp(1.0f, -24)) == 0x0001);
    CHECK(f32_to_fp16(std::ldexp(1.0f, -25)) == 0x0000);          // tie to even: 0
    CHECK(f32_to_fp16(std::ldexp(1.5f, -25)) == 0x0001);
    CHECK(f32_to_fp16(std::ldexp(3.0f, -25)) == 0x0002);          // 1.5 ulp ties to even 2
    CHECK(f32_to_fp16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);   // tie between 1 and next: even
    CHECK(f32_to_fp16(1.0f + std::ldexp(3.0f, -11)) == 0x3c02);   // tie: to even
    CHECK(f32_to_fp16(0.1f) == 0x2e66);
    CHECK(fp16_to_f32(0x3555) == Approx(0.333251953125f).epsilon(0));
    CHECK(std::isinf(fp16_to_f32(0x7c00)));
    CHECK(std::isnan(fp16_to_f32(f32_to_fp16(std::nanf("")))));
    // Every finite fp16 survives the trip through f32 unchanged.
    for (uint32_t h = 0; h < 0x10000; ++h) {
        if ((h & 0x7c00) == 0x7c00) continue;
        REQUIRE(f32_to_fp16(fp16_to_f32(uint16_t(h))) == h);
    }
}

TEST_CASE("bf16 conversion keeps the top half and rounds to nearest even", "[model][codec]") {
    CHECK(f32_to_bf16(1.0f) == 0x3f80);
    CHECK(bf16_to_f32(0xc040) == -3.0f);
    CHECK(f32_to_bf16(std::bit_cast<float>(0x3f808000u)) == 0x3f80);  // tie, even stays
    CHECK(f32_to_bf16(std::bit_cast<float>(0x3f818000u)) == 0x3f82);  // tie, odd rounds up
    CHECK(f32_to_bf16(std::bit_cast<float>(0x3f808001u)) == 0x3f81);
    CHECK(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
}

TEST_CASE("type traits follow ggml's block sizes", "[model][codec]") {
    struct Row { uint32_t type; uint32_t block; uint32_t bytes; };
    const Row rows[] = {{APR_TYPE_F32, 1, 4},    {APR_TYPE_F16, 1, 2},    {APR_TYPE_BF16, 1, 2},
                        {APR_TYPE_Q4_0, 32, 18}, {APR_TYPE_Q4_1, 32, 20}, {APR_TYPE_Q5_0, 32, 22},
                        {APR_TYPE_Q5_1, 32, 24}, {APR_TYPE_Q8_0, 32, 34}, {APR_TYPE_Q4_K, 256, 144},
                        {APR_TYPE_Q5_K, 256, 176}, {APR_TYPE_Q6_K, 256, 210}};
    for (const auto& r : rows) {
        const auto t = ggml_type_traits(r.type);
        REQUIRE(t);
        CHECK(t->block_size == r.block);
        CHECK(t->type_size == r.bytes);
        CHECK(ggml_type_from_name(t->name) == r.type);
        CHECK(row_size(r.type, 512) == 512 / r.block * r.bytes);
    }
    CHECK(ggml_type_name(10) == "Q2_K");
    CHECK(ggml_type_name(11) == "Q3_K");
    CHECK(ggml_type_name(9) == "Q8_1");
    CHECK(ggml_type_name(16) == "IQ2_XXS");
    CHECK(ggml_type_name(99) == "type 99");
    CHECK_FALSE(ggml_type_traits(10));
    CHECK_FALSE(ggml_type_from_name("q2_k"));
    CHECK(ggml_type_from_name("q4_k") == uint32_t(APR_TYPE_Q4_K));
    CHECK_THROWS_AS(row_size(APR_TYPE_Q4_0, 33), std::invalid_argument);
    CHECK_THROWS_AS(row_size(10, 256), std::invalid_argument);
    float out[256];
    uint8_t in[256] = {};
    CHECK_THROWS_AS(dequantize_row(10, in, out, 256), std::invalid_argument);
}

TEST_CASE("legacy blocks decode as ggml lays them out", "[model][codec]") {
    SECTION("Q4_0: low nibble of byte j is element j, high nibble element j+16, x = d(q-8)") {
        std::vector<uint8_t> b(18, 0x88);
        put_u16(b, 0, f32_to_fp16(0.5f));
        b[2] = 0x1f;  // element 0: 15, element 16: 1
        const auto y = dequant(APR_TYPE_Q4_0, b, 32);
        CHECK(y[0] == 3.5f);
        CHECK(y[16] == -3.5f);
        CHECK(y[1] == 0.0f);
    }
    SECTION("Q4_1: x = d q + m") {
        std::vector<uint8_t> b(20, 0);
        put_u16(b, 0, f32_to_fp16(2.0f));
        put_u16(b, 2, f32_to_fp16(-1.0f));
        b[4 + 3] = 0x5a;  // element 3: 10, element 19: 5
        const auto y = dequant(APR_TYPE_Q4_1, b, 32);
        CHECK(y[3] == 19.0f);
        CHECK(y[19] == 9.0f);
        CHECK(y[0] == -1.0f);
    }
    SECTION("Q5_0: bit j of the 32-bit qh is the fifth bit of element j, x = d(q-16)") {
        std::vector<uint8_t> b(22, 0);
        put_u16(b, 0, f32_to_fp16(1.0f));
        const uint32_t qh = (1u << 2) | (1u << 18);  // elements 2 and 18 get +16
        std::memcpy(b.data() + 2, &qh, 4);
        b[6 + 2] = 0x31;  // element 2: 1, element 18: 3
        const auto y = dequant(APR_TYPE_Q5_0, b, 32);
        CHECK(y[2] == 1.0f);     // 17 - 16
        CHECK(y[18] == 3.0f);    // 19 - 16
        CHECK(y[0] == -16.0f);
    }
    SECTION("Q5_1: x = d q + m with the fifth bit from qh") {
        std::vector<uint8_t> b(24, 0);
        put_u16(b, 0, f32_to_fp16(0.25f));
        put_u16(b, 2, f32_to_fp16(1.0f));
        const uint32_t qh = 1u << 31;  // element 31
        std::memcpy(b.data() + 4, &qh, 4);
        b[8 + 15] = 0xf0;  // element 31: 15 (+16 = 31)
        const auto y = dequant(APR_TYPE_Q5_1, b, 32);
        CHECK(y[31] == 1.0f + 0.25f * 31);
        CHECK(y[15] == 1.0f);
    }
    SECTION("Q8_0: x = d q, q signed") {
        std::vector<uint8_t> b(34, 0);
        put_u16(b, 0, f32_to_fp16(0.5f));
        b[2 + 7] = uint8_t(int8_t(-100));
        const auto y = dequant(APR_TYPE_Q8_0, b, 32);
        CHECK(y[7] == -50.0f);
    }
}

TEST_CASE("K-quant blocks decode as ggml lays them out", "[model][codec]") {
    SECTION("Q4_K and Q5_K: 6-bit scales/mins packed in 12 bytes") {
        for (const uint32_t type : {uint32_t(APR_TYPE_Q4_K), uint32_t(APR_TYPE_Q5_K)}) {
            const bool five = type == APR_TYPE_Q5_K;
            std::vector<uint8_t> b(five ? 176 : 144, 0);
            put_u16(b, 0, f32_to_fp16(1.0f));   // d
            put_u16(b, 2, f32_to_fp16(0.5f));   // dmin
            uint8_t* sc = b.data() + 4;
            // sub-block 1: scale 3, min 4 (low 6 bits in bytes 1 and 5)
            sc[1] = 3;
            sc[5] = 4;
            // sub-block 6: scale 0b100101 = 37, min 0b010010 = 18: low nibbles in byte 10,
            // high two bits in the top bits of bytes 2 (scale) and 6 (min).
            sc[10] = uint8_t((37 & 0xf) | ((18 & 0xf) << 4));
            sc[2] |= uint8_t((37 >> 4) << 6);
            sc[6] |= uint8_t((18 >> 4) << 6);
            uint8_t* qs = b.data() + (five ? 48 : 16);
            qs[5] = 0x70;  // pair 0: element 5 (sub-block 0) low nibble 0, element 37 (sub-block 1) high nibble 7
            qs[96 + 2] = 0x09;  // pair 3: element 194 (sub-block 6) low nibble 9
            if (five) b[16 + 2] = uint8_t(1u << 6);  // qh bit 2*3 of byte 2: element 194 gets +16
            const auto y = dequant(type, b, 256);
            CHECK(y[37] == 3.0f * 7 - 0.5f * 4);
            CHECK(y[32] == -2.0f);
            CHECK(y[194] == 37.0f * (five ? 25 : 9) - 0.5f * 18);
            CHECK(y[5] == 0.0f);
        }
    }
    SECTION("Q6_K: ql/qh quarters, int8 scales per 16, d last") {
        std::vector<uint8_t> b(210, 0);
        put_u16(b, 208, f32_to_fp16(0.5f));
        auto* sc = reinterpret_cast<int8_t*>(b.data() + 192);
        for (int i = 0; i < 16; ++i) sc[i] = int8_t(i - 4);
        // Low nibbles 0 and every qh bit pair 2: all elements at level 32, i.e. value 0.
        for (int i = 0; i < 64; ++i) b[128 + i] = 0xaa;
        // Element 86 = first half, third quarter, l = 22: high nibble of ql[22], bits 4-5 of
        // qh[22]; scale index l/16 + 4 = 5.
        b[22] = 0xf0;
        b[128 + 22] = uint8_t((b[128 + 22] & ~0x30) | (3 << 4));  // level 63 -> q = 31
        // Element 244 = second half, fourth quarter, l = 20: high nibble of ql[64+32+20], bits
        // 6-7 of qh[32+20]; scale index 8 + 20/16 + 6 = 15.
        b[128 + 32 + 20] = uint8_t(b[128 + 32 + 20] & ~0xc0);  // level 0 -> q = -32
        // Element 7 = first quarter: low nibble of ql[7], bits 0-1 of qh[7]; scale index 0.
        b[7] = 0x08;  // level 40 -> q = 8
        const auto y = dequant(APR_TYPE_Q6_K, b, 256);
        CHECK(y[86] == 0.5f * 1 * 31);
        CHECK(y[244] == 0.5f * 11 * -32);
        CHECK(y[7] == 0.5f * -4 * 8);
        CHECK(y[0] == 0.0f);
        CHECK(y[22] == 0.0f);
    }
}

TEST_CASE("quantize then dequantize stays within each format's error", "[model][codec]") {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int64_t n = 1024;
    std::vector<float> x(n);
    for (auto& v : x) v = normal(rng);
    x[5] = 4.5f;  // an outlier in one block
    struct Bound { uint32_t type; double rel_rms; };
    const Bound bounds[] = {{APR_TYPE_F32, 0.0},     {APR_TYPE_F16, 5e-4},   {APR_TYPE_BF16, 4e-3},
                            {APR_TYPE_Q8_0, 0.01},   {APR_TYPE_Q6_K, 0.035}, {APR_TYPE_Q5_0, 0.06},
                            {APR_TYPE_Q5_1, 0.05},   {APR_TYPE_Q5_K, 0.06},  {APR_TYPE_Q4_0, 0.12},
                            {APR_TYPE_Q4_1, 0.10},   {APR_TYPE_Q4_K, 0.12}};
    for (const auto& b : bounds) {
        INFO("type " << ggml_type_name(b.type));
        std::vector<uint8_t> q(row_size(b.type, n));
        quantize_row(b.type, x.data(), q.data(), n);
        const auto y = dequant(b.type, q, n);
        const double err = relative_rms_error(x, y);
        CHECK(err <= b.rel_rms);
        // All-zero rows stay zero (no division by a zero scale).
        std::vector<float> zeros(n, 0.0f);
        quantize_row(b.type, zeros.data(), q.data(), n);
        for (float v : dequant(b.type, q, n)) REQUIRE(v == 0.0f);
    }
}
