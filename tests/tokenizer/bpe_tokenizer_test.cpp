// The byte-level BPE tokenizer on a hand-made vocabulary.
#include <catch2/catch.hpp>

#include "tokenizer/synthetic_vocabs.hpp"
#include "tokenizer/tokenizer.hpp"

using namespace apr;
using namespace apr::test;
using Ids = std::vector<int32_t>;

namespace {

// 0 <|endoftext|> (control), then single characters and merge results. "Ġ" (U+0120) is GPT-2's
// spelling of the space byte.
const std::vector<std::string> kTokens = {
    "<|endoftext|>", "h", "e", "l", "o", "\xC4\xA0", "w", "r", "d",                 // 0..8
    "he", "ll", "hell", "hello", "\xC4\xA0w", "or", "\xC4\xA0wor", "ld", "\xC4\xA0world",  // 9..17
    ",", "\xC4\xA0,",                                                                // 18, 19
};
const std::vector<std::string> kMerges = {
    "h e", "l l", "he ll", "hell o", "\xC4\xA0 w", "o r", "\xC4\xA0w or", "l d", "\xC4\xA0wor ld", "\xC4\xA0 ,",
};

GgufBuilder bpe_vocab(const std::string& pre) {
    std::vector<int32_t> types(kTokens.size(), kNormal);
    types[0] = kControl;
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "gpt2").str("tokenizer.ggml.pre", pre).strings("tokenizer.ggml.tokens", kTokens)
        .int32s("tokenizer.ggml.token_type", types).strings("tokenizer.ggml.merges", kMerges)
        .u32("tokenizer.ggml.bos_token_id", 0).u32("tokenizer.ggml.eos_token_id", 0);
    return b;
}

}  // namespace

TEST_CASE("BPE merges by rank inside each pre-tokenizer word", "[tokenizer]") {
    MemoryGguf g(bpe_vocab("gpt2"));
    auto tok = Tokenizer::from_gguf(*g.file);
    CHECK(tok->model() == "gpt2");
    CHECK_FALSE(tok->add_bos());  // gpt2 vocabularies add no BOS unless the metadata says so
    CHECK(tok->encode("hello world", true) == Ids{12, 17});
    // "held": h e -> he; "l d" -> ld (rank 7) beats nothing else -> he, ld.
    CHECK(tok->encode("held", false) == Ids{9, 16});
    CHECK(tok->decode(Ids{12, 17}) == "hello world");
    CHECK(tok->token_to_piece(17) == " world");
}

TEST_CASE("BPE special tokens and end of generation", "[tokenizer]") {
    MemoryGguf g(bpe_vocab("gpt2"));
    auto tok = Tokenizer::from_gguf(*g.file);
    CHECK(tok->encode("hello<|endoftext|>", false, true) == Ids{12, 0});
    CHECK(tok->encode("hello<|endoftext|>", false, false) != Ids{12, 0});
    CHECK(tok->is_end_of_generation(0));
    CHECK(tok->decode(Ids{12, 0}) == "hello");
}

TEST_CASE("BPE add_bos_token from the metadata", "[tokenizer]") {
    GgufBuilder b = bpe_vocab("gpt2");
    b.boolean("tokenizer.ggml.add_bos_token", true);
    MemoryGguf g(b);
    auto tok = Tokenizer::from_gguf(*g.file);
    CHECK(tok->add_bos());
    CHECK(tok->encode("hello", true) == Ids{0, 12});
}

TEST_CASE("gpt2 decode cleans up tokenization spaces - qwen2 does not", "[tokenizer]") {
    const Ids ids = {12, 19, 17};  // "hello" " ," " world"
    MemoryGguf gpt2(bpe_vocab("gpt2"));
    CHECK(Tokenizer::from_gguf(*gpt2.file)->decode(ids) == "hello, world");
    MemoryGguf qwen2(bpe_vocab("qwen2"));
    CHECK(Tokenizer::from_gguf(*qwen2.file)->decode(ids) == "hello , world");

    // Streaming gives the same, holding a trailing space until it knows what follows.
    auto tok = Tokenizer::from_gguf(*gpt2.file);
    StreamingDetokenizer stream(*tok);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.push(id);
    streamed += stream.finish();
    CHECK(streamed == "hello, world");
}
