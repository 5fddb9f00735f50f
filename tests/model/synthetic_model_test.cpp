// Synthetic models: every architecture x weight type loads through Model::load, the weights
// have the intended distribution, files are reproducible, and apr-make-model's command line.
#include <apr/backend.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "model/ggml_type.hpp"
#include "model/model.hpp"
#include "model/synthetic_model.hpp"
#include "model/tensor_codec.hpp"
#include "support/process.hpp"
#include "support/skip.hpp"
#include "support/testdata.hpp"

using namespace apr;

namespace {

std::vector<uint8_t> read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<float> dequantize_tensor(const apr_tensor_view& t) {
    const int64_t n = int64_t(t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3]);
    std::vector<float> out(static_cast<size_t>(n));
    dequantize_row(t.type, t.data, out.data(), n);
    return out;
}

void mean_std(const std::vector<float>& v, double& mean, double& std) {
    double s = 0, s2 = 0;
    for (float x : v) {
        s += x;
        s2 += double(x) * x;
    }
    mean = s / double(v.size());
    std = std::sqrt(s2 / double(v.size()) - mean * mean);
}

// A spec small enough to write quickly, with rows that suit every type (K-quants: 256).
SyntheticModelSpec small_spec(const std::string& arch, uint32_t type) {
    SyntheticModelSpec s;
    s.arch = arch;
    s.n_vocab = 300;
    s.n_embd = 256;
    s.n_layer = 2;
    s.n_head = 4;
    s.n_head_kv = 2;
    s.n_ff = 512;
    s.weight_type = type;
    return s;
}

}  // namespace

TEST_CASE("synthetic models of every architecture and weight type load", "[model][synthetic]") {
    const auto dir = apr::test::scratch_dir("synthetic_every_type");
    const uint32_t types[] = {APR_TYPE_F32,  APR_TYPE_F16,  APR_TYPE_BF16, APR_TYPE_Q8_0, APR_TYPE_Q4_0, APR_TYPE_Q4_1,
                              APR_TYPE_Q5_0, APR_TYPE_Q5_1, APR_TYPE_Q4_K, APR_TYPE_Q5_K, APR_TYPE_Q6_K};
    for (const std::string arch : {"llama", "qwen2", "qwen3"}) {
        for (uint32_t type : types) {
            INFO(arch << " " << ggml_type_name(type));
            const std::string path = (dir / (arch + "-" + ggml_type_name(type) + ".gguf")).string();
            write_synthetic_model(path, small_spec(arch, type), 2);
            const auto m = Model::load(path);
            const apr_model_view& v = m->view();
            CHECK(std::string(v.arch_name) == arch);
            CHECK(v.arch == (arch == "llama" ? APR_ARCH_LLAMA : arch == "qwen2" ? APR_ARCH_QWEN2 : APR_ARCH_QWEN3));
            CHECK(v.rope_type == (arch == "llama" ? APR_ROPE_NORM : APR_ROPE_NEOX));
            CHECK(v.n_vocab == 300);
            CHECK(v.n_embd == 256);
            CHECK(v.n_head == 4);
            CHECK(v.n_head_kv == 2);
            CHECK(v.head_dim == 64);
            CHECK(v.n_rot == 64);
            CHECK(v.n_ff == 512);
            CHECK(v.n_layer == 2);
            CHECK(v.n_ctx_train == 256);
            CHECK(v.bos_token_id == 1);
            CHECK(v.eos_token_id == 2);
            CHECK(v.tied_embeddings == 0);
            CHECK(apr_model_find_tensor(&v, "blk.1.ffn_down.weight")->type == type);
            CHECK(apr_model_find_tensor(&v, "blk.1.ffn_norm.weight")->type == APR_TYPE_F32);
            CHECK((apr_model_find_tensor(&v, "blk.0.attn_k.bias") != nullptr) == (arch == "qwen2"));
            CHECK((apr_model_find_tensor(&v, "blk.0.attn_k_norm.weight") != nullptr) == (arch == "qwen3"));
            const size_t per_layer = 9 + (arch == "qwen2" ? 3 : 0) + (arch == "qwen3" ? 2 : 0);
            CHECK(v.n_tensors == 3 + 2 * per_layer);
        }
    }
}

TEST_CASE("synthetic weights follow the oracle set's distribution", "[model][synthetic]") {
    const auto dir = apr::test::scratch_dir("synthetic_stats");
    const std::string path = (dir / "m.gguf").string();
    SyntheticModelSpec s = small_spec("qwen2", APR_TYPE_F32);
    write_synthetic_model(path, s);
    const auto m = Model::load(path);
    double mean, std;
    mean_std(dequantize_tensor(*apr_model_find_tensor(&m->view(), "blk.0.ffn_up.weight")), mean, std);
    CHECK(std::fabs(mean) < 0.001);
    CHECK(std == Approx(0.02).epsilon(0.02));
    mean_std(dequantize_tensor(*apr_model_find_tensor(&m->view(), "blk.1.attn_norm.weight")), mean, std);
    CHECK(mean == Approx(1.0).margin(0.02));
    CHECK(std == Approx(0.1).epsilon(0.15));
    mean_std(dequantize_tensor(*apr_model_find_tensor(&m->view(), "blk.1.attn_q.bias")), mean, std);
    CHECK(std == Approx(0.02).epsilon(0.15));
    // Different tensors and rows get different values.
    const auto a = dequantize_tensor(*apr_model_find_tensor(&m->view(), "blk.0.attn_q.weight"));
    const auto b = dequantize_tensor(*apr_model_find_tensor(&m->view(), "blk.0.attn_k.weight"));
    CHECK(a[0] != b[0]);
    CHECK(a[0] != a[256]);
}

TEST_CASE("synthetic model files are reproducible and depend on the seed", "[model][synthetic]") {
    const auto dir = apr::test::scratch_dir("synthetic_repro");
    SyntheticModelSpec s;  // the tiny preset
    write_synthetic_model((dir / "a.gguf").string(), s, 1);
    write_synthetic_model((dir / "b.gguf").string(), s, 4);
    s.seed = 2;
    write_synthetic_model((dir / "c.gguf").string(), s, 1);
    const auto a = read_all((dir / "a.gguf").string());
    CHECK(a == read_all((dir / "b.gguf").string()));
    CHECK(a != read_all((dir / "c.gguf").string()));
    CHECK(a.size() == read_all((dir / "c.gguf").string()).size());
}

TEST_CASE("synthetic vocabulary is SentencePiece-shaped", "[model][synthetic]") {
    const SyntheticVocab v = synthetic_vocab(32000);
    REQUIRE(v.tokens.size() == 32000);
    CHECK(v.tokens[0] == "<unk>");
    CHECK(v.types[0] == 2);
    CHECK(v.tokens[1] == "<s>");
    CHECK(v.tokens[2] == "</s>");
    CHECK(v.types[2] == 3);
    CHECK(v.tokens[3 + 0x41] == "<0x41>");
    CHECK(v.types[3 + 0xff] == 6);
    CHECK(v.tokens[259] == "\xe2\x96\x81");
    CHECK(v.tokens[260] == "\xe2\x96\x81the");
    CHECK(v.scores[260] == -1.0f);
    CHECK(v.scores[31999] == -float(31999 - 259));
    std::set<std::string> unique(v.tokens.begin(), v.tokens.end());
    CHECK(unique.size() == v.tokens.size());
    CHECK(synthetic_vocab(259).tokens.size() == 259);
    CHECK_THROWS_AS(synthetic_vocab(100), SyntheticSpecError);
}

TEST_CASE("synthetic presets, tied embeddings, mixed types and Llama 3 rope_freqs", "[model][synthetic]") {
    CHECK(synthetic_preset("tiny").n_embd == 128);
    const auto b1 = synthetic_preset("1b");
    CHECK(b1.n_vocab == 32000);
    CHECK(b1.n_embd == 2048);
    CHECK(b1.n_layer == 16);
    CHECK(b1.n_head == 16);
    CHECK(b1.n_head_kv == 4);
    CHECK(b1.n_ff == 8192);
    const auto b7 = synthetic_preset("7b");
    CHECK(b7.n_embd == 4096);
    CHECK(b7.n_layer == 32);
    CHECK(b7.n_head_kv == 32);
    CHECK(b7.n_ff == 11008);
    CHECK_THROWS_AS(synthetic_preset("13b"), SyntheticSpecError);

    const auto dir = apr::test::scratch_dir("synthetic_variants");
    SyntheticModelSpec s = small_spec("llama", APR_TYPE_Q4_0);
    s.tied_embeddings = true;
    s.embd_type = APR_TYPE_Q8_0;
    s.llama3_rope_freqs = true;
    s.rope_freq_base = 500000;
    const std::string path = (dir / "m.gguf").string();
    write_synthetic_model(path, s);
    const auto m = Model::load(path);
    const apr_model_view& v = m->view();
    CHECK(v.tied_embeddings == 1);
    CHECK(m->file().find_tensor("output.weight") == nullptr);
    const apr_tensor_view* out = apr_model_find_tensor(&v, "output.weight");
    const apr_tensor_view* embd = apr_model_find_tensor(&v, "token_embd.weight");
    REQUIRE(out);
    CHECK(out->data == embd->data);
    CHECK(out->type == APR_TYPE_Q8_0);
    CHECK(v.rope_freq_base == 500000.0f);
    const apr_tensor_view* rf = apr_model_find_tensor(&v, "rope_freqs.weight");
    REQUIRE(rf);
    CHECK(rf->ne[0] == 32);
    const float* d = static_cast<const float*>(rf->data);
    CHECK(d[0] == 1.0f);    // the highest frequency is kept
    CHECK(d[31] == 8.0f);   // the lowest is slowed by the factor

    s = small_spec("llama", APR_TYPE_Q4_K);
    s.output_type = APR_TYPE_Q6_K;
    write_synthetic_model(path, s);
    CHECK(apr_model_find_tensor(&Model::load(path)->view(), "output.weight")->type == APR_TYPE_Q6_K);
}

TEST_CASE("synthetic specs that cannot be written name the field", "[model][synthetic]") {
    auto field_of = [](const SyntheticModelSpec& s) {
        try {
            validate_synthetic_spec(s);
        } catch (const SyntheticSpecError& e) {
            return e.field();
        }
        return std::string("(accepted)");
    };
    SyntheticModelSpec s;
    CHECK(field_of(s) == "(accepted)");
    s.weight_type = APR_TYPE_Q4_K;  // n_embd 128 is not whole super-blocks
    CHECK(field_of(s) == "weight_type");
    s = {};
    s.arch = "gpt2";
    CHECK(field_of(s) == "arch");
    s = {};
    s.n_head = 3;
    CHECK(field_of(s) == "n_head");
    s = {};
    s.n_head_kv = 3;
    CHECK(field_of(s) == "n_head_kv");
    s = {};
    s.n_vocab = 10;
    CHECK(field_of(s) == "n_vocab");
    s = {};
    s.n_layer = 0;
    CHECK(field_of(s) == "n_layer");
    s = {};
    s.output_type = 10;
    CHECK(field_of(s) == "output_type");
    s.tied_embeddings = true;  // no output.weight: its type does not matter
    CHECK(field_of(s) == "(accepted)");
}

TEST_CASE("apr-make-model writes loadable models and rejects bad flags", "[model][synthetic][tool]") {
    const auto tool = apr::test::bin_dir() / "apr-make-model";
    APR_SKIP_TEST_UNLESS(std::filesystem::exists(tool), "apr-make-model is not built (cmake --build build --target apr-make-model)");
    const auto dir = apr::test::scratch_dir("apr_make_model");
    const std::string out = (dir / "q.gguf").string();
    auto r = apr::test::run_process({tool.string(), "--arch", "qwen3", "--type", "q8_0", "--n-layer", "1", "--tied", "--seed", "5", out});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const auto m = Model::load(out);
    CHECK(m->view().arch == APR_ARCH_QWEN3);
    CHECK(m->view().n_layer == 1);
    CHECK(m->view().tied_embeddings == 1);
    CHECK(apr_model_find_tensor(&m->view(), "blk.0.attn_q.weight")->type == APR_TYPE_Q8_0);

    struct Bad { std::vector<std::string> args; std::string flag; };
    const Bad bad[] = {{{"--type", "q2_k"}, "--type"},
                       {{"--type", "q4_k"}, "--type"},  // tiny's n_embd 128 is not whole super-blocks
                       {{"--arch", "mamba"}, "--arch"},
                       {{"--shape", "70b"}, "--shape"},
                       {{"--n-head", "5"}, "--n-head"},
                       {{"--n-vocab", "-3"}, "--n-vocab"},
                       {{"--n-embd", "12x"}, "--n-embd"},
                       {{"--seed", "abc"}, "--seed"},
                       {{"--no-such-flag"}, "--no-such-flag"}};
    for (const auto& b : bad) {
        std::vector<std::string> argv{tool.string()};
        argv.insert(argv.end(), b.args.begin(), b.args.end());
        argv.push_back((dir / "bad.gguf").string());
        const auto res = apr::test::run_process(argv);
        INFO(b.flag << ": " << res.err);
        CHECK(res.exit_code == 2);
        CHECK(apr::test::lines_of(res.err).size() == 1);
        CHECK(res.err.find(b.flag) != std::string::npos);
        CHECK_FALSE(std::filesystem::exists(dir / "bad.gguf"));
    }
    const auto none = apr::test::run_process({tool.string()});
    CHECK(none.exit_code == 2);
}

TEST_CASE("synthetic model files are byte-identical to the pinned reference", "[model][synthetic]") {
    // Hashes of files this generator wrote when it was pinned. Every machine and build must
    // reproduce them (the generator uses no libm and no FMA); a deliberate change to the
    // generator or the vocabulary must update them, and says so in its commit.
    const auto dir = apr::test::scratch_dir("synthetic_pinned");
    auto fnv = [](const std::vector<uint8_t>& bytes) {
        uint64_t h = 0xcbf29ce484222325ull;
        for (uint8_t b : bytes) h = (h ^ b) * 0x100000001b3ull;
        return h;
    };
    struct Pin { uint32_t type; uint64_t hash; size_t size; };
    for (const Pin& p : {Pin{APR_TYPE_F32, 0xc943910ecc42e70dull, 5785920}, Pin{APR_TYPE_Q4_K, 0x159506584d91ac44ull, 829760}}) {
        INFO(ggml_type_name(p.type));
        SyntheticModelSpec s;
        s.n_embd = 256;
        s.n_ff = 512;
        s.weight_type = p.type;
        const std::string path = (dir / "m.gguf").string();
        write_synthetic_model(path, s, 2);
        const auto bytes = read_all(path);
        CHECK(bytes.size() == p.size);
        CHECK(fnv(bytes) == p.hash);
    }
}
