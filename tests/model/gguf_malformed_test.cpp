// Malformed GGUF files: every truncation, impossible counts and lengths, bad offsets and
// dimensions, unsupported types and duplicates each give a GgufError naming the offset and the
// field — never a crash, an over-read or a huge allocation. Plus a mutation fuzz.
#include <apr/backend.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <string>

#include "model/gguf_file.hpp"
#include "model/gguf_writer.hpp"
#include "model/model.hpp"
#include "model/synthetic_model.hpp"
#include "support/testdata.hpp"

using namespace apr;

namespace {

std::vector<uint8_t> sample_file() {
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_u32("general.alignment", 32);
    w.add_string_array("tokenizer.ggml.tokens", {"a", "bb", "ccc"});
    w.add_bool("x.flag", true);
    w.add_u32("x.count", 5);
    w.add_string("x.name2", "bbbb");
    w.add_string("x.name3", "cccc");
    w.add_tensor_f32("first", APR_TYPE_F32, {8, 2}, std::vector<float>(16, 1.0f));
    w.add_tensor_f32("second", APR_TYPE_Q8_0, {32, 2}, std::vector<float>(64, 0.5f));
    w.add_tensor_f32("third", APR_TYPE_F32, {4}, {1, 2, 3, 4});
    return w.to_bytes();
}

// Positions of fields in a valid file, found from its parse.
struct Layout {
    std::unique_ptr<GgufFile> file;
    const std::vector<uint8_t>& bytes;
    explicit Layout(const std::vector<uint8_t>& b) : file(GgufFile::from_memory(b)), bytes(b) {}

    size_t key_length_at(const std::string& key) const {
        const auto it = std::search(bytes.begin(), bytes.end(), key.begin(), key.end());
        REQUIRE(it != bytes.end());
        return size_t(it - bytes.begin()) - 8;
    }
    size_t value_at(const std::string& key) const { return file->find(key)->offset; }
    size_t type_at(const std::string& key) const { return value_at(key) - 4; }
    size_t tensor_info_at(size_t i) const { return file->tensors()[i].info_offset; }
    size_t n_dims_at(size_t i) const { return tensor_info_at(i) + 8 + file->tensors()[i].name.size(); }
    size_t ne_at(size_t i, size_t d) const { return n_dims_at(i) + 4 + 8 * d; }
    size_t tensor_type_at(size_t i) const { return ne_at(i, file->tensors()[i].ne.size()); }
    size_t tensor_offset_at(size_t i) const { return tensor_type_at(i) + 4; }
    // End of the last byte any tensor uses: shorter files must be rejected.
    size_t data_end() const {
        uint64_t end = 0;
        for (const auto& t : file->tensors()) end = std::max(end, file->data_offset() + t.offset + t.n_bytes);
        return size_t(end);
    }
};

template <typename T>
std::vector<uint8_t> patched(std::vector<uint8_t> b, size_t at, T value) {
    std::memcpy(b.data() + at, &value, sizeof(T));
    return b;
}

// Parses `bytes`, expecting a GgufError whose field contains `field` and message `problem`,
// at `offset` when given.
void expect_gguf_error(const std::vector<uint8_t>& bytes, const std::string& field, const std::string& problem,
                       std::optional<uint64_t> offset = std::nullopt) {
    try {
        GgufFile::from_memory(bytes, "bad.gguf");
        FAIL("accepted a malformed file; expected an error on " << field);
    } catch (const GgufError& e) {
        INFO(e.what());
        CHECK(e.field().find(field) != std::string::npos);
        CHECK(std::string(e.what()).find(problem) != std::string::npos);
        CHECK(std::string(e.what()).rfind("bad.gguf: ", 0) == 0);
        CHECK(std::string(e.what()).find(" at offset " + std::to_string(e.offset())) != std::string::npos);
        if (offset) CHECK(e.offset() == *offset);
    }
}

}  // namespace

TEST_CASE("a file truncated anywhere before its last tensor byte is rejected", "[model][gguf][malformed]") {
    const auto good = sample_file();
    const Layout L(good);
    const size_t end = L.data_end();
    REQUIRE(end <= good.size());
    for (size_t len = 0; len < end; ++len) {
        // An exact-size copy, so that any read past the end touches memory outside the buffer.
        const std::vector<uint8_t> cut(good.begin(), good.begin() + std::ptrdiff_t(len));
        try {
            GgufFile::from_memory(cut, "cut.gguf");
            FAIL("a file truncated to " << len << " bytes was accepted");
        } catch (const GgufError& e) {
            INFO("length " << len << ": " << e.what());
            REQUIRE(e.offset() <= len);
            REQUIRE_FALSE(e.field().empty());
        }
    }
    // Trailing padding after the last tensor is not needed.
    CHECK_NOTHROW(GgufFile::from_memory(std::vector<uint8_t>(good.begin(), good.begin() + std::ptrdiff_t(end))));

    // At the section boundaries the error names the section.
    auto cut = [&](size_t len) { return std::vector<uint8_t>(good.begin(), good.begin() + std::ptrdiff_t(len)); };
    expect_gguf_error(cut(0), "header.magic", "too short", 0);
    expect_gguf_error(cut(4), "header.version", "truncated", 4);
    expect_gguf_error(cut(8), "header.n_tensors", "truncated", 8);
    expect_gguf_error(cut(16), "header.n_kv", "truncated", 16);
    expect_gguf_error(cut(24), "header.n_kv", "cannot fit", 16);
    expect_gguf_error(cut(L.tensor_info_at(0)), "header.n_tensors", "cannot fit", 8);
    expect_gguf_error(cut(L.tensor_offset_at(2)), "tensor_infos[2].offset", "truncated", L.tensor_offset_at(2));
    // (With its tensor count zeroed, so that the early size check on the counts passes.)
    expect_gguf_error(patched(cut(L.value_at("x.count") + 2), 8, uint64_t(0)), "kv[4].value (key 'x.count')", "truncated",
                      L.value_at("x.count"));
    expect_gguf_error(cut(size_t(L.file->data_offset()) - 1), "data section", "past the end of the file");
    expect_gguf_error(cut(size_t(L.file->data_offset())), "tensor_infos[0].offset", "run past the end of the file");
}

TEST_CASE("bad magic and unsupported versions are rejected", "[model][gguf][malformed]") {
    const auto good = sample_file();
    expect_gguf_error(patched(good, 0, uint32_t(0x46554746)), "header.magic", "bad magic", 0);
    expect_gguf_error(patched(good, 4, uint32_t(1)), "header.version", "version 1 is not supported", 4);
    expect_gguf_error(patched(good, 4, uint32_t(99)), "header.version", "unsupported GGUF version 99", 4);
    expect_gguf_error(patched(good, 4, uint32_t(0x03000000)), "header.version", "big-endian", 4);
    CHECK_NOTHROW(GgufFile::from_memory(patched(good, 4, uint32_t(2))));  // v2 has the same layout
}

TEST_CASE("absurd counts and lengths are rejected before any allocation", "[model][gguf][malformed]") {
    const auto good = sample_file();
    const Layout L(good);
    expect_gguf_error(patched(good, 16, uint64_t(1) << 40), "header.n_kv", "cannot fit", 16);
    expect_gguf_error(patched(good, 16, ~uint64_t(0)), "header.n_kv", "cannot fit", 16);
    expect_gguf_error(patched(good, 8, uint64_t(1) << 50), "header.n_tensors", "cannot fit", 8);
    expect_gguf_error(patched(good, 8, ~uint64_t(0)), "header.n_tensors", "cannot fit", 8);
    // A key whose length runs past the end.
    const size_t key_at = L.key_length_at("x.flag");
    expect_gguf_error(patched(good, key_at, uint64_t(1) << 62), "kv[3].key", "runs past the end", key_at);
    // A string value, and an element of a string array, the same.
    expect_gguf_error(patched(good, L.value_at("x.name2"), uint64_t(good.size())), "kv[5].value (key 'x.name2')",
                      "runs past the end");
    const size_t arr = L.value_at("tokenizer.ggml.tokens");
    expect_gguf_error(patched(good, arr + 12 + 8 + 1, uint64_t(1) << 33), "kv[2].value (key 'tokenizer.ggml.tokens')[1]",
                      "runs past the end");
    // An array claiming 2^60 elements (of strings, and of uint8).
    expect_gguf_error(patched(good, arr + 4, uint64_t(1) << 60), "kv[2].value (key 'tokenizer.ggml.tokens')", "cannot fit",
                      arr + 4);
    auto u8_array = patched(good, arr, uint32_t(GgufType::UINT8));
    expect_gguf_error(patched(u8_array, arr + 4, uint64_t(1) << 60), "kv[2].value", "cannot fit", arr + 4);
}

TEST_CASE("bad metadata value types are rejected", "[model][gguf][malformed]") {
    const auto good = sample_file();
    const Layout L(good);
    expect_gguf_error(patched(good, L.type_at("x.count"), uint32_t(13)), "kv[4].type (key 'x.count')",
                      "unknown metadata value type 13", L.type_at("x.count"));
    const size_t arr = L.value_at("tokenizer.ggml.tokens");
    expect_gguf_error(patched(good, arr, uint32_t(GgufType::ARRAY)), "kv[2].value", "arrays of arrays");
    expect_gguf_error(patched(good, arr, uint32_t(77)), "kv[2].value", "unknown metadata value type 77");
    expect_gguf_error(patched(good, L.value_at("x.flag"), uint8_t(2)), "kv[3].value (key 'x.flag')", "neither 0 nor 1");
    // general.alignment must be a power of two, and an integer.
    const size_t al = L.value_at("general.alignment");
    expect_gguf_error(patched(good, al, uint32_t(48)), "kv[1].value (key 'general.alignment')", "power of two", al);
    expect_gguf_error(patched(good, al, uint32_t(0)), "kv[1].value (key 'general.alignment')", "power of two", al);
    expect_gguf_error(patched(good, L.type_at("general.alignment"), uint32_t(GgufType::FLOAT32)),
                      "kv[1].value (key 'general.alignment')", "must be an integer");
}

TEST_CASE("duplicate keys and tensor names are rejected", "[model][gguf][malformed]") {
    const auto good = sample_file();
    const Layout L(good);
    // "x.name3" -> "x.name2"
    const size_t k3 = L.key_length_at("x.name3");
    auto dup_key = good;
    dup_key[k3 + 8 + 6] = '2';
    expect_gguf_error(dup_key, "kv[6].key (key 'x.name2')", "duplicate key (first defined by kv[5])", k3);
    // "third" -> "first"
    const size_t t2 = L.tensor_info_at(2);
    auto dup_tensor = good;
    std::memcpy(dup_tensor.data() + t2 + 8, "first", 5);
    expect_gguf_error(dup_tensor, "tensor_infos[2].name", "duplicate tensor name 'first' (first at tensor_infos[0])", t2);
    // An empty key.
    expect_gguf_error(patched(good, L.key_length_at("x.flag"), uint64_t(0)), "kv[3].key", "");
}

TEST_CASE("bad tensor infos are rejected with the tensor's field", "[model][gguf][malformed]") {
    const auto good = sample_file();
    const Layout L(good);
    // n_dims outside 1..4.
    expect_gguf_error(patched(good, L.n_dims_at(0), uint32_t(0)), "tensor_infos[0].n_dims", "not in 1..4", L.n_dims_at(0));
    expect_gguf_error(patched(good, L.n_dims_at(0), uint32_t(5)), "tensor_infos[0].n_dims", "not in 1..4");
    // A zero dimension; dimensions whose product overflows.
    expect_gguf_error(patched(good, L.ne_at(0, 1), uint64_t(0)), "tensor_infos[0].ne[1]", "dimension is 0", L.ne_at(0, 1));
    auto big = patched(good, L.ne_at(0, 0), uint64_t(1) << 40);
    expect_gguf_error(patched(big, L.ne_at(0, 1), uint64_t(1) << 40), "tensor_infos[0].ne[1]", "overflows",
                      L.ne_at(0, 1));
    // A huge but non-overflowing shape is caught as running past the end.
    expect_gguf_error(patched(good, L.ne_at(0, 1), uint64_t(1) << 40), "tensor_infos[0].offset", "run past the end");
    // Unsupported and unknown types; a row that is not whole blocks.
    expect_gguf_error(patched(good, L.tensor_type_at(1), uint32_t(10)), "tensor_infos[1].type", "Q2_K is not supported",
                      L.tensor_type_at(1));
    expect_gguf_error(patched(good, L.tensor_type_at(1), uint32_t(1000)), "tensor_infos[1].type", "type 1000 is not supported");
    expect_gguf_error(patched(good, L.tensor_type_at(0), uint32_t(APR_TYPE_Q4_0)), "tensor_infos[0].ne[0]",
                      "not a multiple of Q4_0's block size 32");
    // Offsets past the end, overflowing, and misaligned.
    expect_gguf_error(patched(good, L.tensor_offset_at(2), uint64_t(1) << 40), "tensor_infos[2].offset", "run past the end",
                      L.tensor_offset_at(2));
    expect_gguf_error(patched(good, L.tensor_offset_at(2), ~uint64_t(0) - 31), "tensor_infos[2].offset",
                      "run past the end");
    expect_gguf_error(patched(good, L.tensor_offset_at(1), L.file->tensors()[1].offset + 4), "tensor_infos[1].offset",
                      "not a multiple of the alignment 32");
    // An empty tensor name.
    expect_gguf_error(patched(good, L.tensor_info_at(0), uint64_t(0)), "tensor_infos[0].name", "empty tensor name");
}

TEST_CASE("randomly mutated files never crash the reader or the loader", "[model][gguf][malformed][fuzz]") {
    SyntheticModelSpec spec;
    spec.n_vocab = 260;
    spec.n_embd = 32;
    spec.n_head = 2;
    spec.n_head_kv = 1;
    spec.n_ff = 64;
    spec.n_layer = 1;
    const auto dir = apr::test::scratch_dir("gguf_fuzz");
    const std::string path = (dir / "m.gguf").string();
    write_synthetic_model(path, spec, 1);
    const auto model_file = GgufFile::open(path);
    const auto span = model_file->bytes();
    const std::vector<uint8_t> good(span.begin(), span.end());
    const size_t header = size_t(model_file->data_offset());
    // The metadata is mostly vocabulary strings; bias mutations toward the structural bytes.
    const size_t hot_start = model_file->tensors()[0].info_offset;

    std::mt19937_64 rng(12345);
    int parsed = 0, gguf_errors = 0, model_errors = 0;
    for (int iter = 0; iter < 4000; ++iter) {
        auto b = good;
        const int n_mut = 1 + int(rng() % 4);
        for (int k = 0; k < n_mut; ++k) {
            const size_t lo = (rng() % 2) ? hot_start : 0;
            const size_t at = lo + size_t(rng() % (header - lo));
            switch (rng() % 4) {
                case 0: b[at] = uint8_t(rng()); break;
                case 1: b[at] ^= uint8_t(1u << (rng() % 8)); break;
                case 2: b[at] = 0xff; break;
                default: b[at] = 0; break;
            }
        }
        if (rng() % 8 == 0) b.resize(size_t(rng() % b.size()));
        try {
            auto f = GgufFile::from_memory(b, "fuzz.gguf");
            ++parsed;
            Model::from_gguf(std::move(f));
        } catch (const GgufError&) {
            ++gguf_errors;
        } catch (const ModelError&) {
            ++model_errors;
        }
    }
    INFO("parsed " << parsed << ", GgufError " << gguf_errors << ", ModelError " << model_errors);
    CHECK(gguf_errors > 100);
    CHECK(model_errors > 10);
}
