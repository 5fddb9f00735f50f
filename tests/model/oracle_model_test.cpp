// The reader, the model loader and the dequantizer on llama.cpp's own files (the oracle set in
// ../shared/testdata/oracle): hyperparameters as the oracle JSON states them, and every
// quantized tensor within quantization error of the same tensor in the F16 file.
#include <apr/backend.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "model/ggml_type.hpp"
#include "model/gguf_file.hpp"
#include "model/model.hpp"
#include "model/tensor_codec.hpp"
#include "support/skip.hpp"
#include "support/testdata.hpp"

using namespace apr;

namespace {

std::string oracle(const std::string& variant) {
    return (apr::test::testdata_dir() / "oracle" / ("tiny-llama-" + variant + ".gguf")).string();
}

std::vector<float> dequantize_tensor(const apr_tensor_view& t) {
    const int64_t n = int64_t(t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3]);
    std::vector<float> out(static_cast<size_t>(n));
    dequantize_row(t.type, t.data, out.data(), n);
    return out;
}

}  // namespace

TEST_CASE("oracle models load with the oracle's hyperparameters", "[model][oracle]") {
    APR_SKIP_TEST_UNLESS(apr::test::have_testdata(), apr::test::no_testdata_reason());
    for (const char* variant : {"F16", "Q8_0", "Q4_0", "Q4_K_M", "Q6_K"}) {
        INFO(variant);
        const auto model = Model::load(oracle(variant));
        const apr_model_view& v = model->view();
        CHECK(v.struct_size == sizeof(apr_model_view));
        CHECK(v.arch == APR_ARCH_LLAMA);
        CHECK(std::string(v.arch_name) == "llama");
        CHECK(v.n_vocab == 2048);
        CHECK(v.n_embd == 256);
        CHECK(v.n_layer == 2);
        CHECK(v.n_head == 8);
        CHECK(v.n_head_kv == 2);
        CHECK(v.head_dim == 32);
        CHECK(v.n_rot == 32);
        CHECK(v.n_ff == 768);
        CHECK(v.n_ctx_train == 256);
        CHECK(v.rope_type == APR_ROPE_NORM);
        CHECK(v.rope_freq_base == 10000.0f);
        CHECK(v.rope_freq_scale == 1.0f);
        CHECK(v.rms_norm_eps == Approx(1e-5f));
        CHECK(v.tied_embeddings == 0);
        CHECK(v.bos_token_id == 1);
        CHECK(v.eos_token_id == 2);
        CHECK(v.n_tensors == 3 + 9 * 2);
        const apr_tensor_view* q = apr_model_find_tensor(&v, "blk.1.attn_q.weight");
        REQUIRE(q);
        CHECK(q->n_dims == 2);
        CHECK(q->ne[0] == 256);
        CHECK(q->ne[1] == 256);
        CHECK(q->n_bytes == row_size(q->type, 256) * 256);
        const apr_tensor_view* norm = apr_model_find_tensor(&v, "blk.0.ffn_norm.weight");
        REQUIRE(norm);
        CHECK(norm->type == APR_TYPE_F32);
        CHECK(model->file().version() == 3);
        CHECK(model->file().get_string("tokenizer.ggml.model") == "llama");
        REQUIRE(model->file().get_string_array("tokenizer.ggml.tokens"));
        CHECK(model->file().get_string_array("tokenizer.ggml.tokens")->size() == 2048);
        CHECK(model->identity().find("size=" + std::to_string(model->file().file_size())) == 0);
    }
}

TEST_CASE("oracle tensor types are as the oracle JSON lists them", "[model][oracle]") {
    APR_SKIP_TEST_UNLESS(apr::test::have_testdata(), apr::test::no_testdata_reason());
    const auto f = GgufFile::open(oracle("Q4_K_M"));
    CHECK(f->find_tensor("output.weight")->type == APR_TYPE_Q6_K);
    CHECK(f->find_tensor("token_embd.weight")->type == APR_TYPE_Q4_K);
    CHECK(f->find_tensor("blk.1.attn_v.weight")->type == APR_TYPE_Q6_K);
    CHECK(f->find_tensor("blk.0.attn_v.weight")->type == APR_TYPE_Q4_K);
    const auto g = GgufFile::open(oracle("Q4_0"));
    CHECK(g->find_tensor("output.weight")->type == APR_TYPE_Q6_K);
    CHECK(g->find_tensor("blk.0.ffn_up.weight")->type == APR_TYPE_Q4_0);
}

TEST_CASE("dequantized oracle tensors match the F16 file within quantization error", "[model][oracle][codec]") {
    APR_SKIP_TEST_UNLESS(apr::test::have_testdata(), apr::test::no_testdata_reason());
    const auto f16 = Model::load(oracle("F16"));
    // Relative RMS error bounds per weight type for N(0, 0.02^2) weights. A layout mistake
    // (nibble order, scale packing) gives errors of order 1.
    auto bound = [](uint32_t type) {
        switch (type) {
            case APR_TYPE_F32: return 1e-6;
            case APR_TYPE_Q8_0: return 0.01;
            case APR_TYPE_Q6_K: return 0.03;
            default: return 0.10;  // 4-bit formats (measured 0.071-0.086)
        }
    };
    for (const char* variant : {"Q8_0", "Q4_0", "Q4_K_M", "Q6_K"}) {
        const auto q = Model::load(oracle(variant));
        const apr_model_view& v = q->view();
        for (uint32_t i = 0; i < v.n_tensors; ++i) {
            const apr_tensor_view& t = v.tensors[i];
            INFO(variant << " " << t.name << " " << ggml_type_name(t.type));
            const apr_tensor_view* ref = apr_model_find_tensor(&f16->view(), t.name);
            REQUIRE(ref);
            const auto a = dequantize_tensor(*ref);
            const auto b = dequantize_tensor(t);
            REQUIRE(a.size() == b.size());
            double num = 0, den = 0;
            for (size_t k = 0; k < a.size(); ++k) {
                num += (double(a[k]) - b[k]) * (double(a[k]) - b[k]);
                den += double(a[k]) * a[k];
            }
            const double rel = std::sqrt(num / den);
            CHECK(rel <= bound(t.type));
        }
    }
}

TEST_CASE("a vocabulary-only GGUF reads as a file but is not a model", "[model][oracle]") {
    APR_SKIP_TEST_UNLESS(apr::test::have_testdata(), apr::test::no_testdata_reason());
    const std::string path = (apr::test::testdata_dir() / "vocab" / "ggml-vocab-llama-spm.gguf").string();
    const auto f = GgufFile::open(path);
    CHECK(f->tensors().empty());
    REQUIRE(f->get_string_array("tokenizer.ggml.tokens"));
    CHECK(f->get_string_array("tokenizer.ggml.tokens")->size() == 32000);
    REQUIRE(f->get_float_array("tokenizer.ggml.scores"));
    REQUIRE(f->get_int_array("tokenizer.ggml.token_type"));
    CHECK_THROWS_WITH(Model::load(path), Catch::Contains("has no tensors"));
    const std::string gpt2 = (apr::test::testdata_dir() / "vocab" / "ggml-vocab-gpt-2.gguf").string();
    CHECK_THROWS_WITH(Model::load(gpt2), Catch::Contains("unsupported architecture 'gpt2'"));
}
