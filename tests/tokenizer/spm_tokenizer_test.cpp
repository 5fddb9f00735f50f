// The SentencePiece-style tokenizer on hand-made vocabularies.
#include <catch2/catch.hpp>

#include "tokenizer/synthetic_vocabs.hpp"
#include "tokenizer/tokenizer.hpp"

using namespace apr;
using namespace apr::test;
using Ids = std::vector<int32_t>;

namespace {
const std::string kSp = "\xE2\x96\x81";  // U+2581
}

TEST_CASE("SPM merges the best-scoring pair first", "[tokenizer]") {
    // " ab" -> "▁" "a" "b". Both "▁a" and "ab" are tokens, "▁ab" is not: the higher score decides.
    SECTION("ab scores higher") {
        MemoryGguf g(spm_vocab({{kSp, -1}, {"a", -1}, {"b", -1}, {kSp + "a", -5}, {"ab", -2}}));
        auto tok = Tokenizer::from_gguf(*g.file);
        CHECK(tok->encode("ab", false) == Ids{kSpmFirstPiece + 0, kSpmFirstPiece + 4});
    }
    SECTION("▁a scores higher") {
        MemoryGguf g(spm_vocab({{kSp, -1}, {"a", -1}, {"b", -1}, {kSp + "a", -2}, {"ab", -5}}));
        auto tok = Tokenizer::from_gguf(*g.file);
        CHECK(tok->encode("ab", false) == Ids{kSpmFirstPiece + 3, kSpmFirstPiece + 2});
    }
}

TEST_CASE("SPM adds BOS and the leading space, and decode removes the space again", "[tokenizer]") {
    MemoryGguf g(spm_vocab({{kSp, -1}, {"a", -1}, {kSp + "a", -2}}));
    auto tok = Tokenizer::from_gguf(*g.file);
    const int32_t sp = kSpmFirstPiece, a = kSpmFirstPiece + 1, sp_a = kSpmFirstPiece + 2;
    CHECK(tok->add_bos());
    CHECK(tok->bos() == 1);
    CHECK(tok->eos() == 2);
    CHECK(tok->encode("a a", true) == Ids{1, sp_a, sp_a});
    CHECK(tok->encode("a a", false) == Ids{sp_a, sp_a});
    CHECK(tok->encode("", true) == Ids{1});
    CHECK(tok->encode("", false).empty());
    CHECK(tok->decode(Ids{1, sp_a, sp_a}) == "a a");
    CHECK(tok->decode(Ids{sp_a, sp_a}) == "a a");
    // A continuation keeps its space.
    CHECK(tok->decode(Ids{sp_a}, /*at_text_start=*/false) == " a");
    CHECK(tok->decode(Ids{sp, a}) == "a");
    CHECK(tok->token_to_piece(sp_a) == " a");
}

TEST_CASE("SPM spells unknown characters with byte tokens, and decodes them back", "[tokenizer]") {
    MemoryGguf g(spm_vocab({{kSp, -1}, {"a", -1}}));
    auto tok = Tokenizer::from_gguf(*g.file);
    const int32_t sp = kSpmFirstPiece, a = kSpmFirstPiece + 1;
    // "é" is C3 A9.
    const Ids ids = tok->encode("a\xC3\xA9", false);
    CHECK(ids == Ids{sp, a, spm_byte(0xC3), spm_byte(0xA9)});
    CHECK(tok->decode(ids) == "a\xC3\xA9");
    CHECK(tok->token_to_piece(spm_byte(0xC3)) == "\xC3");
}

TEST_CASE("SPM special tokens: parsed only when asked, rendered only when asked", "[tokenizer]") {
    MemoryGguf g(spm_vocab({{kSp, -1}, {"a", -1}, {"b", -1}}));
    auto tok = Tokenizer::from_gguf(*g.file);
    const int32_t sp = kSpmFirstPiece, a = kSpmFirstPiece + 1, b = kSpmFirstPiece + 2;
    // Text after a special token gets the leading space again (llama.cpp).
    CHECK(tok->encode("a</s>b", false, true) == Ids{sp, a, 2, sp, b});
    const Ids as_text = tok->encode("a</s>b", false, false);
    CHECK(std::find(as_text.begin(), as_text.end(), 2) == as_text.end());
    CHECK(tok->decode(as_text) == "a</s>b");
    CHECK(tok->token_to_piece(1).empty());
    CHECK(tok->token_to_piece(1, true) == "<s>");
    CHECK(tok->is_control(1));
    CHECK(tok->is_end_of_generation(2));
    CHECK_FALSE(tok->is_end_of_generation(1));
    CHECK_FALSE(tok->is_end_of_generation(a));
    CHECK_THROWS_AS(tok->token_to_piece(-1), TokenizerError);
    CHECK_THROWS_AS(tok->token_to_piece(static_cast<int32_t>(tok->n_vocab())), TokenizerError);
    CHECK(tok->model() == "llama");
}

TEST_CASE("streaming detokenizer holds a character split over byte tokens until it is whole", "[tokenizer]") {
    MemoryGguf g(spm_vocab({{kSp, -1}, {"a", -1}}));
    auto tok = Tokenizer::from_gguf(*g.file);
    const int32_t sp = kSpmFirstPiece, a = kSpmFirstPiece + 1;
    // " 🦙a" : the llama emoji is F0 9F A6 99.
    const Ids ids = {sp, spm_byte(0xF0), spm_byte(0x9F), spm_byte(0xA6), spm_byte(0x99), a};
    StreamingDetokenizer stream(*tok);
    CHECK(stream.push(ids[0]) == "");  // the added leading space is dropped
    CHECK(stream.push(ids[1]) == "");
    CHECK(stream.push(ids[2]) == "");
    CHECK(stream.push(ids[3]) == "");
    CHECK(stream.push(ids[4]) == "\xF0\x9F\xA6\x99");
    CHECK(stream.push(ids[5]) == "a");
    CHECK(stream.finish() == "");
    CHECK(tok->decode(ids) == "\xF0\x9F\xA6\x99" "a");

    // An incomplete character at the end comes out in finish(), as decode would give it.
    StreamingDetokenizer cut(*tok);
    std::string streamed;
    for (int32_t id : {sp, a, spm_byte(0xF0), spm_byte(0x9F)}) streamed += cut.push(id);
    CHECK(streamed == "a");
    streamed += cut.finish();
    CHECK(streamed == tok->decode(Ids{sp, a, spm_byte(0xF0), spm_byte(0x9F)}));

    // A continuation keeps its leading space.
    StreamingDetokenizer continuation(*tok, /*at_text_start=*/false);
    CHECK(continuation.push(sp) == " ");
}
