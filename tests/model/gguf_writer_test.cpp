// GgufWriter -> GgufFile round trips: every metadata value type, every tensor type, streamed
// rows, alignment, and the writer's own argument checks.
#include <apr/backend.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <stdexcept>

#include "model/ggml_type.hpp"
#include "model/gguf_file.hpp"
#include "model/gguf_writer.hpp"
#include "model/tensor_codec.hpp"
#include "support/testdata.hpp"

using namespace apr;

TEST_CASE("every metadata value type survives a write and a read", "[model][gguf][writer]") {
    GgufWriter w;
    w.add_u8("t.u8", 255);
    w.add_i8("t.i8", -128);
    w.add_u16("t.u16", 65535);
    w.add_i16("t.i16", -32768);
    w.add_u32("t.u32", 0xffffffffu);
    w.add_i32("t.i32", std::numeric_limits<int32_t>::min());
    w.add_u64("t.u64", std::numeric_limits<uint64_t>::max());
    w.add_i64("t.i64", std::numeric_limits<int64_t>::min());
    w.add_f32("t.f32", 0.1f);
    w.add_f64("t.f64", 1e300);
    w.add_bool("t.bool", true);
    w.add_string("t.str", "h\xc3\xa9llo \xe2\x96\x81world");
    w.add_string("t.empty", "");
    const std::vector<int64_t> ints{0, 1, 2, 127};
    for (GgufType t : {GgufType::UINT8, GgufType::INT8, GgufType::UINT16, GgufType::INT16, GgufType::UINT32,
                       GgufType::INT32, GgufType::UINT64, GgufType::INT64})
        w.add_int_array("a.int" + std::to_string(int(t)), t, ints);
    w.add_int_array("a.i8neg", GgufType::INT8, std::vector<int64_t>{-128, -1});
    w.add_int_array("a.bool", GgufType::BOOL, std::vector<int64_t>{1, 0, 1});
    w.add_float_array("a.f32", GgufType::FLOAT32, std::vector<double>{0.5, -2.25});
    w.add_float_array("a.f64", GgufType::FLOAT64, std::vector<double>{1e-300, 3.0});
    w.add_string_array("a.str", {"x", "", "\xe2\x96\x81the"});
    w.add_string_array("a.empty", {});
    w.add_tensor_f32("one", APR_TYPE_F32, {4}, {1, 2, 3, 4});

    const auto bytes = w.to_bytes();
    const auto f = GgufFile::from_memory(bytes);
    CHECK(f->version() == 3);
    CHECK(f->metadata().size() == w.n_kv());
    CHECK(f->get_uint("t.u8") == 255u);
    CHECK(f->find("t.u8")->type == GgufType::UINT8);
    CHECK(f->get_int("t.i8") == -128);
    CHECK(f->get_uint("t.u16") == 65535u);
    CHECK(f->get_int("t.i16") == -32768);
    CHECK(f->get_uint("t.u32") == 0xffffffffu);
    CHECK(f->get_int("t.i32") == std::numeric_limits<int32_t>::min());
    CHECK(f->get_uint("t.u64") == std::numeric_limits<uint64_t>::max());
    CHECK(f->get_int("t.i64") == std::numeric_limits<int64_t>::min());
    CHECK(f->get_float("t.f32") == double(0.1f));
    CHECK(f->get_float("t.f64") == 1e300);
    CHECK(f->get_float("t.u8") == 255.0);
    CHECK(f->get_bool("t.bool") == true);
    CHECK(f->get_string("t.str") == "h\xc3\xa9llo \xe2\x96\x81world");
    CHECK(f->get_string("t.empty") == "");
    for (GgufType t : {GgufType::UINT8, GgufType::INT8, GgufType::UINT16, GgufType::INT16, GgufType::UINT32,
                       GgufType::INT32, GgufType::UINT64, GgufType::INT64}) {
        const std::string key = "a.int" + std::to_string(int(t));
        REQUIRE(f->get_int_array(key));
        CHECK(*f->get_int_array(key) == ints);
        CHECK(f->find(key)->array_type == t);
    }
    CHECK(*f->get_int_array("a.i8neg") == std::vector<int64_t>{-128, -1});
    CHECK(*f->get_int_array("a.bool") == std::vector<int64_t>{1, 0, 1});
    CHECK(*f->get_float_array("a.f32") == std::vector<double>{0.5, -2.25});
    CHECK(*f->get_float_array("a.f64") == std::vector<double>{1e-300, 3.0});
    CHECK(*f->get_string_array("a.str") == std::vector<std::string>{"x", "", "\xe2\x96\x81the"});
    CHECK(f->get_string_array("a.empty")->empty());
    CHECK(f->find("a.empty")->array_length == 0);

    // Absent keys are nullopt; present keys of the wrong type are errors naming the key.
    CHECK_FALSE(f->get_uint("no.such.key"));
    CHECK(f->get_string_array("no.such.key") == nullptr);
    CHECK_THROWS_WITH(f->get_string("t.u32"), Catch::Contains("key 't.u32'") && Catch::Contains("expected a string"));
    CHECK_THROWS_AS(f->get_uint("t.i8"), GgufError);  // negative
    CHECK_THROWS_AS(f->get_int("t.u64"), GgufError);  // above int64
    CHECK_THROWS_AS(f->get_bool("t.u8"), GgufError);
    CHECK_THROWS_AS(f->get_float("t.str"), GgufError);
    CHECK_THROWS_AS(f->get_string_array("a.f32"), GgufError);
    CHECK_THROWS_AS(f->get_int_array("a.str"), GgufError);
    CHECK_THROWS_AS(f->get_float_array("t.f32"), GgufError);
}

TEST_CASE("every tensor type survives a write and a read", "[model][gguf][writer]") {
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    const uint64_t cols = 512, rows = 3;
    std::vector<float> values(cols * rows);
    for (auto& v : values) v = normal(rng);
    const uint32_t types[] = {APR_TYPE_F32,  APR_TYPE_F16,  APR_TYPE_BF16, APR_TYPE_Q8_0, APR_TYPE_Q4_0, APR_TYPE_Q4_1,
                              APR_TYPE_Q5_0, APR_TYPE_Q5_1, APR_TYPE_Q4_K, APR_TYPE_Q5_K, APR_TYPE_Q6_K};
    GgufWriter w;
    for (uint32_t t : types) w.add_tensor_f32("m." + ggml_type_name(t), t, {cols, rows}, values);
    // A 3-D tensor and a 1-D one, streamed.
    w.add_tensor_rows("cube", APR_TYPE_F32, {8, 2, 3}, [](uint64_t r, float* out) {
        for (int i = 0; i < 8; ++i) out[i] = float(r * 100 + i);
    });
    const auto bytes = w.to_bytes();
    const auto f = GgufFile::from_memory(bytes);
    REQUIRE(f->tensors().size() == std::size(types) + 1);
    for (uint32_t t : types) {
        INFO(ggml_type_name(t));
        const GgufTensorInfo* info = f->find_tensor("m." + ggml_type_name(t));
        REQUIRE(info);
        CHECK(info->type == t);
        CHECK(info->ne == std::vector<uint64_t>{cols, rows});
        CHECK(info->n_elements() == cols * rows);
        CHECK(info->n_bytes == row_size(t, int64_t(cols)) * rows);
        CHECK(info->offset % f->alignment() == 0);
        // The stored bytes are exactly what quantize_row makes of the values.
        std::vector<uint8_t> expect(info->n_bytes);
        const size_t rb = row_size(t, int64_t(cols));
        for (uint64_t r = 0; r < rows; ++r) quantize_row(t, values.data() + r * cols, expect.data() + r * rb, int64_t(cols));
        CHECK(std::memcmp(info->data, expect.data(), expect.size()) == 0);
    }
    const GgufTensorInfo* cube = f->find_tensor("cube");
    REQUIRE(cube);
    CHECK(cube->ne == std::vector<uint64_t>{8, 2, 3});
    const float* c = reinterpret_cast<const float*>(cube->data);
    CHECK(c[0] == 0.0f);
    CHECK(c[8 * 5 + 7] == 507.0f);
}

TEST_CASE("streamed rows give the same bytes whatever the thread count", "[model][gguf][writer]") {
    auto make = [](unsigned threads) {
        GgufWriter w;
        w.add_tensor_rows("big", APR_TYPE_Q4_K, {4096, 700}, [](uint64_t r, float* out) {
            for (int i = 0; i < 4096; ++i) out[i] = std::sin(float(r * 4096 + i) * 0.001f);
        });
        return w.to_bytes(threads);
    };
    const auto one = make(1);
    CHECK(one == make(3));
    const auto f = GgufFile::from_memory(one);
    CHECK(f->tensors()[0].n_bytes == 700u * 16 * 144);
}

TEST_CASE("a non-default alignment is recorded and honoured", "[model][gguf][writer]") {
    GgufWriter w(256);
    w.add_string("general.architecture", "x");
    w.add_tensor_f32("a", APR_TYPE_F32, {3}, {1, 2, 3});
    w.add_tensor_f32("b", APR_TYPE_F32, {5}, {1, 2, 3, 4, 5});
    const auto f = GgufFile::from_memory(w.to_bytes());
    CHECK(f->alignment() == 256);
    CHECK(f->get_uint("general.alignment") == 256u);
    CHECK(f->data_offset() % 256 == 0);
    CHECK(f->find_tensor("b")->offset == 256);
    CHECK_THROWS_AS(GgufWriter(48), std::invalid_argument);
}

TEST_CASE("write() puts a complete file in place and nothing else", "[model][gguf][writer]") {
    const auto dir = apr::test::scratch_dir("gguf_writer_file");
    const std::string path = (dir / "m.gguf").string();
    GgufWriter w;
    w.add_u32("k", 7);
    w.add_tensor_f32("t", APR_TYPE_F16, {2, 2}, {1, 2, 3, 4});
    w.write(path);
    CHECK(std::filesystem::exists(path));
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
    const auto f = GgufFile::open(path);
    CHECK(f->get_uint("k") == 7u);
    CHECK(f->file_size() == std::filesystem::file_size(path));
    CHECK_THROWS_AS(w.write((dir / "no" / "such" / "dir.gguf").string()), std::system_error);
}

TEST_CASE("the writer refuses what it cannot write", "[model][gguf][writer]") {
    GgufWriter w;
    w.add_u32("k", 1);
    CHECK_THROWS_AS(w.add_u32("k", 2), std::invalid_argument);
    CHECK_THROWS_AS(w.add_string("", "x"), std::invalid_argument);
    CHECK_THROWS_AS(w.add_int_array("a", GgufType::UINT8, std::vector<int64_t>{256}), std::invalid_argument);
    CHECK_THROWS_AS(w.add_int_array("a", GgufType::STRING, std::vector<int64_t>{1}), std::invalid_argument);
    CHECK_THROWS_AS(w.add_float_array("a", GgufType::INT32, std::vector<double>{1}), std::invalid_argument);
    w.add_tensor_f32("t", APR_TYPE_F32, {2}, {1, 2});
    CHECK_THROWS_AS(w.add_tensor_f32("t", APR_TYPE_F32, {2}, {1, 2}), std::invalid_argument);
    CHECK_THROWS_AS(w.add_tensor_f32("q", APR_TYPE_Q4_0, {16}, std::vector<float>(16)), std::invalid_argument);
    CHECK_THROWS_WITH(w.add_tensor("q", 10, {256}, {}), Catch::Contains("Q2_K is not supported"));
    CHECK_THROWS_AS(w.add_tensor("q", APR_TYPE_F32, {4}, std::vector<uint8_t>(15)), std::invalid_argument);
    CHECK_THROWS_AS(w.add_tensor("q", APR_TYPE_F32, {}, {}), std::invalid_argument);
    CHECK_THROWS_AS(w.add_tensor("q", APR_TYPE_F32, {1, 1, 1, 1, 1}, std::vector<uint8_t>(4)), std::invalid_argument);
    CHECK(w.n_tensors() == 1);  // failed additions leave nothing behind
    CHECK(GgufFile::from_memory(w.to_bytes())->tensors().size() == 1);
}
