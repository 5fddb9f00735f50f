// Model::load's recognition of architectures, hyperparameters and tensors: defaults, RoPE
// scaling, tied embeddings, and a ModelError naming the culprit for everything it cannot run.
#include <apr/backend.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>
#include <map>

#include "model/gguf_file.hpp"
#include "model/gguf_writer.hpp"
#include "model/model.hpp"
#include "model/synthetic_model.hpp"
#include "support/testdata.hpp"

using namespace apr;

namespace {

// A minimal model as editable parts: metadata and tensor shapes (all data zero).
struct Parts {
    std::string arch = "llama";
    std::map<std::string, uint32_t> u32;
    std::map<std::string, float> f32;
    std::map<std::string, std::string> str;
    struct T {
        uint32_t type;
        std::vector<uint64_t> ne;
    };
    std::map<std::string, T> tensors;
};

Parts parts_for(const std::string& arch) {
    const uint32_t n_vocab = 300, n_embd = 64, n_head = 4, n_head_kv = 2, head_dim = 16, n_ff = 96, n_layer = 2;
    Parts p;
    p.arch = arch;
    const std::string a = arch + ".";
    p.str["general.architecture"] = arch;
    p.u32[a + "context_length"] = 128;
    p.u32[a + "embedding_length"] = n_embd;
    p.u32[a + "block_count"] = n_layer;
    p.u32[a + "feed_forward_length"] = n_ff;
    p.u32[a + "attention.head_count"] = n_head;
    p.u32[a + "attention.head_count_kv"] = n_head_kv;
    p.f32[a + "attention.layer_norm_rms_epsilon"] = 1e-6f;
    p.u32["tokenizer.ggml.bos_token_id"] = 1;
    p.u32["tokenizer.ggml.eos_token_id"] = 2;
    p.tensors["token_embd.weight"] = {APR_TYPE_F16, {n_embd, n_vocab}};
    p.tensors["output_norm.weight"] = {APR_TYPE_F32, {n_embd}};
    p.tensors["output.weight"] = {APR_TYPE_Q8_0, {n_embd, n_vocab}};
    for (uint32_t l = 0; l < n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        p.tensors[b + "attn_norm.weight"] = {APR_TYPE_F32, {n_embd}};
        p.tensors[b + "ffn_norm.weight"] = {APR_TYPE_F32, {n_embd}};
        p.tensors[b + "attn_q.weight"] = {APR_TYPE_Q8_0, {n_embd, n_head * head_dim}};
        p.tensors[b + "attn_k.weight"] = {APR_TYPE_Q8_0, {n_embd, n_head_kv * head_dim}};
        p.tensors[b + "attn_v.weight"] = {APR_TYPE_Q8_0, {n_embd, n_head_kv * head_dim}};
        p.tensors[b + "attn_output.weight"] = {APR_TYPE_Q8_0, {n_head * head_dim, n_embd}};
        p.tensors[b + "ffn_gate.weight"] = {APR_TYPE_Q8_0, {n_embd, n_ff}};
        p.tensors[b + "ffn_up.weight"] = {APR_TYPE_Q8_0, {n_embd, n_ff}};
        p.tensors[b + "ffn_down.weight"] = {APR_TYPE_Q8_0, {n_ff, n_embd}};
        if (arch == "qwen2") {
            p.tensors[b + "attn_q.bias"] = {APR_TYPE_F32, {n_head * head_dim}};
            p.tensors[b + "attn_k.bias"] = {APR_TYPE_F32, {n_head_kv * head_dim}};
            p.tensors[b + "attn_v.bias"] = {APR_TYPE_F32, {n_head_kv * head_dim}};
        }
        if (arch == "qwen3") {
            p.tensors[b + "attn_q_norm.weight"] = {APR_TYPE_F32, {head_dim}};
            p.tensors[b + "attn_k_norm.weight"] = {APR_TYPE_F32, {head_dim}};
        }
    }
    return p;
}

// Keeps the bytes alive with the model.
struct Loaded {
    std::vector<uint8_t> bytes;
    std::unique_ptr<Model> model;
};

std::shared_ptr<Loaded> load(const Parts& p) {
    GgufWriter w;
    for (const auto& [k, v] : p.str) w.add_string(k, v);
    for (const auto& [k, v] : p.u32) w.add_u32(k, v);
    for (const auto& [k, v] : p.f32) w.add_f32(k, v);
    for (const auto& [name, t] : p.tensors) {
        uint64_t n = 1;
        for (uint64_t d : t.ne) n *= d;
        w.add_tensor_f32(name, t.type, t.ne, std::vector<float>(n, 0.0f));
    }
    auto l = std::make_shared<Loaded>();
    l->bytes = w.to_bytes();
    l->model = Model::from_gguf(GgufFile::from_memory(l->bytes, "parts.gguf"));
    return l;
}

void expect_model_error(const Parts& p, const std::string& message) {
    try {
        load(p);
        FAIL("loaded; expected: " << message);
    } catch (const ModelError& e) {
        INFO(e.what());
        CHECK(std::string(e.what()).rfind("parts.gguf: ", 0) == 0);
        CHECK(std::string(e.what()).find(message) != std::string::npos);
    }
}

}  // namespace

TEST_CASE("hyperparameters, defaults and the view of a minimal model", "[model][load]") {
    for (const std::string arch : {"llama", "qwen2", "qwen3"}) {
        INFO(arch);
        auto p = parts_for(arch);
        p.u32.erase(arch + ".attention.head_count_kv");  // defaults to head_count
        p.tensors["blk.0.attn_k.weight"].ne[1] = 64;
        p.tensors["blk.0.attn_v.weight"].ne[1] = 64;
        p.tensors["blk.1.attn_k.weight"].ne[1] = 64;
        p.tensors["blk.1.attn_v.weight"].ne[1] = 64;
        if (arch == "qwen2")
            for (int l = 0; l < 2; ++l) {
                p.tensors["blk." + std::to_string(l) + ".attn_k.bias"].ne[0] = 64;
                p.tensors["blk." + std::to_string(l) + ".attn_v.bias"].ne[0] = 64;
            }
        const auto l = load(p);
        const apr_model_view& v = l->model->view();
        CHECK(v.struct_size == sizeof(apr_model_view));
        CHECK(v.n_head_kv == 4);
        CHECK(v.head_dim == 16);
        CHECK(v.n_rot == 16);
        CHECK(v.rope_freq_base == 10000.0f);
        CHECK(v.rope_freq_scale == 1.0f);
        CHECK(v.rms_norm_eps == 1e-6f);
        CHECK(v.n_vocab == 300);
        CHECK(v.n_ctx_train == 128);
        CHECK(std::string(v.model_name) == "parts.gguf");
        CHECK(v.rope_type == (arch == "llama" ? APR_ROPE_NORM : APR_ROPE_NEOX));
        CHECK(v.n_tensors == p.tensors.size());
        for (uint32_t i = 0; i < v.n_tensors; ++i) {
            const apr_tensor_view& t = v.tensors[i];
            const auto* info = l->model->file().find_tensor(t.name);
            REQUIRE(info);
            CHECK(t.data == info->data);
            CHECK(t.n_bytes == info->n_bytes);
            CHECK(t.n_dims == info->ne.size());
            CHECK(t.ne[3] == 1);
        }
    }
}

TEST_CASE("optional hyperparameters are read when present", "[model][load]") {
    auto p = parts_for("llama");
    p.f32["llama.rope.freq_base"] = 500000.0f;
    p.str["llama.rope.scaling.type"] = "linear";
    p.f32["llama.rope.scaling.factor"] = 4.0f;
    p.u32["llama.rope.dimension_count"] = 16;
    p.u32["llama.attention.key_length"] = 16;
    p.str["general.name"] = "Parts Model";
    auto l = load(p);
    CHECK(l->model->view().rope_freq_base == 500000.0f);
    CHECK(l->model->view().rope_freq_scale == 0.25f);
    CHECK(std::string(l->model->view().model_name) == "Parts Model");

    // qwen3 style: a head dimension other than n_embd / n_head.
    auto q = parts_for("qwen3");
    q.u32["qwen3.attention.key_length"] = 32;
    for (int i = 0; i < 2; ++i) {
        const std::string b = "blk." + std::to_string(i) + ".";
        q.tensors[b + "attn_q.weight"].ne[1] = 128;
        q.tensors[b + "attn_k.weight"].ne[1] = 64;
        q.tensors[b + "attn_v.weight"].ne[1] = 64;
        q.tensors[b + "attn_output.weight"].ne[0] = 128;
        q.tensors[b + "attn_q_norm.weight"].ne[0] = 32;
        q.tensors[b + "attn_k_norm.weight"].ne[0] = 32;
    }
    const auto lq = load(q);
    CHECK(lq->model->view().head_dim == 32);
    CHECK(lq->model->view().n_rot == 32);

    // No token ids: -1.
    auto n = parts_for("llama");
    n.u32.erase("tokenizer.ggml.bos_token_id");
    n.u32.erase("tokenizer.ggml.eos_token_id");
    CHECK(load(n)->model->view().bos_token_id == -1);
    CHECK(load(n)->model->view().eos_token_id == -1);
}

TEST_CASE("a model without output.weight is tied to token_embd", "[model][load]") {
    auto p = parts_for("qwen2");
    p.tensors.erase("output.weight");
    const auto l = load(p);
    const apr_model_view& v = l->model->view();
    CHECK(v.tied_embeddings == 1);
    CHECK(v.n_tensors == p.tensors.size() + 1);
    const apr_tensor_view* out = apr_model_find_tensor(&v, "output.weight");
    const apr_tensor_view* embd = apr_model_find_tensor(&v, "token_embd.weight");
    REQUIRE(out);
    REQUIRE(embd);
    CHECK(out != embd);
    CHECK(out->data == embd->data);
    CHECK(out->type == embd->type);
    CHECK(out->ne[0] == embd->ne[0]);
    CHECK(out->ne[1] == embd->ne[1]);
    CHECK(out->n_bytes == embd->n_bytes);
}

TEST_CASE("models apr cannot run are rejected naming the culprit", "[model][load]") {
    SECTION("architecture") {
        auto p = parts_for("llama");
        p.str["general.architecture"] = "xyz";
        expect_model_error(p, "unsupported architecture 'xyz'");
        p.str.erase("general.architecture");
        expect_model_error(p, "missing metadata key 'general.architecture'");
    }
    SECTION("hyperparameters") {
        auto p = parts_for("llama");
        p.u32.erase("llama.block_count");
        expect_model_error(p, "missing metadata key 'llama.block_count'");
        p = parts_for("llama");
        p.f32.erase("llama.attention.layer_norm_rms_epsilon");
        expect_model_error(p, "layer_norm_rms_epsilon");
        p = parts_for("llama");
        p.u32["llama.attention.head_count_kv"] = 3;
        expect_model_error(p, "not a multiple of head_count_kv 3");
        p = parts_for("llama");
        p.u32["llama.rope.dimension_count"] = 8;
        expect_model_error(p, "partial RoPE");
        p = parts_for("llama");
        p.str["llama.rope.scaling.type"] = "yarn";
        expect_model_error(p, "RoPE scaling 'yarn' is not supported");
        p = parts_for("llama");
        p.u32["llama.embedding_length"] = 0;
        expect_model_error(p, "'llama.embedding_length' is 0");
        p = parts_for("llama");
        p.u32["tokenizer.ggml.bos_token_id"] = 300;
        expect_model_error(p, "'tokenizer.ggml.bos_token_id' = 300 is not a token id below n_vocab 300");
    }
    SECTION("a hyperparameter of the wrong type is a GgufError naming the key") {
        auto p = parts_for("llama");
        p.u32.erase("llama.block_count");
        p.str["llama.block_count"] = "two";
        CHECK_THROWS_WITH(load(p), Catch::Contains("key 'llama.block_count'"));
    }
    SECTION("tensors") {
        auto p = parts_for("llama");
        p.tensors.erase("blk.1.ffn_up.weight");
        expect_model_error(p, "missing tensor 'blk.1.ffn_up.weight'");
        p = parts_for("llama");
        p.tensors["blk.0.attn_k.weight"].ne[1] = 64;
        expect_model_error(p, "tensor 'blk.0.attn_k.weight' has shape [64, 64], expected [64, 32]");
        p = parts_for("llama");
        p.tensors["blk.0.attn_norm.weight"].type = APR_TYPE_F16;
        expect_model_error(p, "tensor 'blk.0.attn_norm.weight' is F16, expected F32");
        p = parts_for("llama");
        p.tensors["output.weight"].ne[1] = 299;
        expect_model_error(p, "tensor 'output.weight' has shape [64, 299], expected [64, 300]");
        p = parts_for("llama");
        p.tensors["rope_freqs.weight"] = {APR_TYPE_F32, {16}};
        expect_model_error(p, "tensor 'rope_freqs.weight' has shape [16], expected [8]");
    }
    SECTION("qwen2 needs q/k/v biases, qwen3 q/k norms") {
        auto p = parts_for("qwen2");
        p.tensors.erase("blk.0.attn_q.bias");
        expect_model_error(p, "missing tensor 'blk.0.attn_q.bias'");
        p = parts_for("qwen3");
        p.tensors.erase("blk.1.attn_k_norm.weight");
        expect_model_error(p, "missing tensor 'blk.1.attn_k_norm.weight'");
    }
    SECTION("a file without tensors") {
        Parts p = parts_for("llama");
        p.tensors.clear();
        expect_model_error(p, "has no tensors");
    }
}

TEST_CASE("identity changes with the content and is stable for the same file", "[model][load]") {
    const auto dir = apr::test::scratch_dir("model_identity");
    SyntheticModelSpec s;
    s.n_layer = 1;
    write_synthetic_model((dir / "a.gguf").string(), s);
    s.seed = 9;
    write_synthetic_model((dir / "b.gguf").string(), s);
    const auto a1 = Model::load((dir / "a.gguf").string());
    const auto a2 = Model::load((dir / "a.gguf").string());
    const auto b = Model::load((dir / "b.gguf").string());
    CHECK(a1->identity() == a2->identity());
    CHECK(a1->identity() != b->identity());
    CHECK(a1->identity().find("fnv1a64_1mib=") != std::string::npos);
    CHECK(a1->identity().find("a.gguf") != std::string::npos);
    CHECK_THROWS_AS(Model::load((dir / "missing.gguf").string()), std::system_error);
    CHECK_THROWS_AS(Model::load(dir.string()), std::system_error);
}
