// Each pre-tokenizer on strings whose cuts follow by hand from its expressions.
#include <catch2/catch.hpp>

#include "tokenizer/pre_tokenizer.hpp"
#include "tokenizer/tokenizer_error.hpp"

using namespace apr;
using Words = std::vector<std::string>;

namespace {
Words split(const std::string& pre, const std::string& text) { return PreTokenizer::for_name(pre)->split(text); }
}  // namespace

TEST_CASE("gpt2 pre-tokenizer cuts words, numbers, punctuation and spaces like GPT-2", "[tokenizer]") {
    CHECK(split("gpt2", "Hello world") == Words{"Hello", " world"});
    // Lower-case contractions only; the space goes with the following word.
    CHECK(split("gpt2", "I've 3 cats!!") == Words{"I", "'ve", " 3", " cats", "!!"});
    CHECK(split("gpt-2", "Don'T") == Words{"Don", "'", "T"});
    // "\s+(?!\S)" leaves the last space of a run to the next word.
    CHECK(split("gpt2", "a  b") == Words{"a", " ", " b"});
    // A newline before a letter matches no alternative: it stays a piece of its own.
    CHECK(split("gpt2", "x\ny") == Words{"x", "\n", "y"});
    CHECK(split("gpt2", "abc123") == Words{"abc", "123"});
    // \p{L} is Unicode-aware.
    CHECK(split("gpt2", "нещо на") == Words{"нещо", " на"});
    CHECK(split("gpt2", "").empty());
}

TEST_CASE("default pre-tokenizer applies llama.cpp's four expressions in turn", "[tokenizer]") {
    // 1: punctuation/symbol runs; 2: GPT-2; 3: digit runs; 4: digits cut in threes.
    CHECK(split("default", "a+b=12345") == Words{"a", "+", "b", "=", "123", "45"});
    CHECK(split("", "Hi, you") == Words{"Hi", ",", " you"});
}

TEST_CASE("llama3 pre-tokenizer: any-case contractions, digits in threes, newline runs", "[tokenizer]") {
    CHECK(split("llama3", "I'M 12345 ok") == Words{"I", "'M", " ", "123", "45", " ok"});
    CHECK(split("llama-bpe", "hi\n\nthere") == Words{"hi", "\n\n", "there"});
    // One leading non-letter joins the letters that follow it.
    CHECK(split("llama3", "(x)") == Words{"(x", ")"});
    CHECK(split("llama3", "a   ") == Words{"a", "   "});
}

TEST_CASE("qwen2 pre-tokenizer takes digits one at a time", "[tokenizer]") {
    CHECK(split("qwen2", "12345") == Words{"1", "2", "3", "4", "5"});
    CHECK(split("qwen2", "I'M 12") == Words{"I", "'M", " ", "1", "2"});
}

TEST_CASE("deepseek-coder pre-tokenizer: newlines, letters, punctuation, single digits", "[tokenizer]") {
    CHECK(split("deepseek-coder", "ab 12\ncd!") == Words{"ab", " ", "1", "2", "\n", "cd", "!"});
}

TEST_CASE("deepseek-llm pre-tokenizer: letters, punctuation, trailing spaces, CJK, numbers", "[tokenizer]") {
    CHECK(split("deepseek-llm", "Hi, \xE4\xBD\xA0\xE5\xA5\xBD 42 ") ==
          Words{"Hi", ",", " ", "\xE4\xBD\xA0\xE5\xA5\xBD", " ", "42", " "});
}

TEST_CASE("pre-tokenizer pieces always join back to the input", "[tokenizer]") {
    const std::string text = "Hello, y'all! How are you \xF0\x9F\x98\x81 ?\xE6\x88\x91 1314151 \t\n  x";
    for (const auto& name : PreTokenizer::known_names()) {
        INFO(name);
        std::string joined;
        for (const auto& w : split(name, text)) {
            CHECK(!w.empty());
            joined += w;
        }
        CHECK(joined == text);
    }
}

TEST_CASE("pre-tokenizer replaces invalid UTF-8 with U+FFFD like llama.cpp", "[tokenizer]") {
    CHECK(split("gpt2", "a\xFF") == Words{"a", "\xEF\xBF\xBD"});
}

TEST_CASE("unknown pre-tokenizer name is an error naming it", "[tokenizer]") {
    try {
        (void)PreTokenizer::for_name("no-such-pre");
        FAIL("no error");
    } catch (const TokenizerError& e) {
        CHECK_THAT(e.what(), Catch::Contains("no-such-pre"));
        CHECK_THAT(e.what(), Catch::Contains("tokenizer.ggml.pre"));
    }
}
