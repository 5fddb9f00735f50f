// Vocabularies that cannot be used are rejected with an error that names the problem.
#include <catch2/catch.hpp>

#include "tokenizer/synthetic_vocabs.hpp"
#include "tokenizer/tokenizer.hpp"

using namespace apr;
using namespace apr::test;

namespace {

std::string error_of(const GgufBuilder& b) {
    MemoryGguf g(b);
    try {
        (void)Tokenizer::from_gguf(*g.file);
    } catch (const TokenizerError& e) {
        return e.what();
    }
    return "(no error)";
}

GgufBuilder minimal_bpe() {
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "gpt2").str("tokenizer.ggml.pre", "gpt2")
        .strings("tokenizer.ggml.tokens", {"a", "b", "ab"}).strings("tokenizer.ggml.merges", {"a b"});
    return b;
}

}  // namespace

TEST_CASE("a minimal valid BPE vocabulary loads", "[tokenizer]") {
    MemoryGguf g(minimal_bpe());
    auto tok = Tokenizer::from_gguf(*g.file);
    CHECK(tok->n_vocab() == 3);
    CHECK(tok->bos() == -1);  // llama.cpp's default 11 is out of range here: none
    CHECK(tok->encode("ab", true) == std::vector<int32_t>{2});
}

TEST_CASE("unknown tokenizer model is an error naming it", "[tokenizer]") {
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "bert").strings("tokenizer.ggml.tokens", {"a"});
    const std::string e = error_of(b);
    CHECK_THAT(e, Catch::Contains("'bert'"));
    CHECK_THAT(e, Catch::Contains("tokenizer.ggml.model"));
}

TEST_CASE("unknown pre-tokenizer is an error naming it", "[tokenizer]") {
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "gpt2").str("tokenizer.ggml.pre", "martian")
        .strings("tokenizer.ggml.tokens", {"a"}).strings("tokenizer.ggml.merges", {});
    const std::string e = error_of(b);
    CHECK_THAT(e, Catch::Contains("'martian'"));
    CHECK_THAT(e, Catch::Contains("tokenizer.ggml.pre"));
}

TEST_CASE("missing tokenizer metadata is an error naming the key", "[tokenizer]") {
    SECTION("no model") {
        GgufBuilder b;
        b.strings("tokenizer.ggml.tokens", {"a"});
        CHECK_THAT(error_of(b), Catch::Contains("missing tokenizer.ggml.model"));
    }
    SECTION("no tokens") {
        GgufBuilder b;
        b.str("tokenizer.ggml.model", "llama");
        CHECK_THAT(error_of(b), Catch::Contains("missing tokenizer.ggml.tokens"));
    }
    SECTION("no merges for gpt2") {
        GgufBuilder b;
        b.str("tokenizer.ggml.model", "gpt2").str("tokenizer.ggml.pre", "gpt2").strings("tokenizer.ggml.tokens", {"a"});
        CHECK_THAT(error_of(b), Catch::Contains("missing tokenizer.ggml.merges"));
    }
}

TEST_CASE("malformed tokenizer metadata is an error naming the key", "[tokenizer]") {
    SECTION("tokens not an array") {
        GgufBuilder b;
        b.str("tokenizer.ggml.model", "llama").u32("tokenizer.ggml.tokens", 3);
        CHECK_THAT(error_of(b), Catch::Contains("tokenizer.ggml.tokens has type uint32"));
    }
    SECTION("fewer scores than tokens") {
        GgufBuilder b;
        b.str("tokenizer.ggml.model", "llama").strings("tokenizer.ggml.tokens", {"a", "b"})
            .floats("tokenizer.ggml.scores", {0.0f});
        CHECK_THAT(error_of(b), Catch::Contains("tokenizer.ggml.scores has 1 entries for 2 tokens"));
    }
    SECTION("add_bos_token without a BOS") {
        GgufBuilder b = minimal_bpe();
        b.boolean("tokenizer.ggml.add_bos_token", true);
        CHECK_THAT(error_of(b), Catch::Contains("bos_token_id is not set"));
    }
    SECTION("duplicate token") {
        GgufBuilder b;
        b.str("tokenizer.ggml.model", "llama").strings("tokenizer.ggml.tokens", {"a", "b", "a"});
        CHECK_THAT(error_of(b), Catch::Contains("duplicate token"));
    }
    SECTION("merge without a separator") {
        GgufBuilder b;
        b.str("tokenizer.ggml.model", "gpt2").str("tokenizer.ggml.pre", "gpt2")
            .strings("tokenizer.ggml.tokens", {"a"}).strings("tokenizer.ggml.merges", {"ab"});
        CHECK_THAT(error_of(b), Catch::Contains("tokenizer.ggml.merges[0]"));
    }
}
