// The real vocabularies llama.cpp tests its tokenizers with: every case must give exactly the
// ids the original tokenizer gave, and decode back to its text.
#include <catch2/catch.hpp>

#include <map>

#include "model/gguf_file.hpp"
#include "support/skip.hpp"
#include "tokenizer/space_cleanup.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/utf8.hpp"
#include "tokenizer/vocab_cases.hpp"

using namespace apr;
using namespace apr::test;

namespace {

bool have_vocab(const std::string& name) {
    return std::filesystem::exists(vocab_file(name)) && std::filesystem::exists(vocab_file(name + ".inp")) &&
           std::filesystem::exists(vocab_file(name + ".out"));
}

std::string missing_vocab(const std::string& name) {
    return "vocabulary test data not found: " + vocab_file(name).string() + "{,.inp,.out}";
}

std::string show(const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
    return s;
}

void check_encodes_like_the_original(const std::string& name) {
    auto file = GgufFile::open(vocab_file(name).string());
    auto tok = Tokenizer::from_gguf(*file);
    const auto cases = load_vocab_cases(name);
    REQUIRE(cases.size() >= 40);
    for (size_t i = 0; i < cases.size(); ++i) {
        INFO(name << " case " << i << ": \"" << cases[i].text << "\"");
        const auto ids = tok->encode(cases[i].text, /*add_special=*/false, /*parse_special=*/false);
        INFO("got      " << show(ids));
        INFO("expected " << show(cases[i].ids));
        CHECK(ids == cases[i].ids);
    }
}

// decode(encode(text)) for every case, except those listed with the reason the original
// tokenizer (llama.cpp's detokenizer) cannot give the text back either. For a listed case the
// test still pins what decode must give instead.
void check_round_trip(const std::string& name, const std::map<size_t, std::string>& cannot_round_trip) {
    auto file = GgufFile::open(vocab_file(name).string());
    auto tok = Tokenizer::from_gguf(*file);
    const auto cases = load_vocab_cases(name);
    for (size_t i = 0; i < cases.size(); ++i) {
        INFO(name << " case " << i << ": \"" << cases[i].text << "\"");
        const std::string text = tok->decode(cases[i].ids);
        INFO("decoded \"" << text << "\"");
        auto listed = cannot_round_trip.find(i);
        if (listed == cannot_round_trip.end()) {
            CHECK(text == cases[i].text);
        } else {
            INFO("listed as not round-tripping: " << listed->second);
            CHECK(text != cases[i].text);
            CHECK(text == clean_up_spaces(cases[i].text));
        }
    }
}

}  // namespace

TEST_CASE("llama SPM vocabulary encodes every llama.cpp test case to the original ids", "[tokenizer]") {
    const std::string name = "ggml-vocab-llama-spm.gguf";
    APR_SKIP_TEST_UNLESS(have_vocab(name), missing_vocab(name));
    check_encodes_like_the_original(name);
}

TEST_CASE("GPT-2 BPE vocabulary encodes every llama.cpp test case to the original ids", "[tokenizer]") {
    const std::string name = "ggml-vocab-gpt-2.gguf";
    APR_SKIP_TEST_UNLESS(have_vocab(name), missing_vocab(name));
    check_encodes_like_the_original(name);
}

TEST_CASE("llama SPM vocabulary decodes every test case back to its text", "[tokenizer]") {
    const std::string name = "ggml-vocab-llama-spm.gguf";
    APR_SKIP_TEST_UNLESS(have_vocab(name), missing_vocab(name));
    // SPM loses nothing: spaces are U+2581, anything else is a piece or byte tokens, and the one
    // space encode adds in front is dropped again.
    check_round_trip(name, {});
}

TEST_CASE("GPT-2 BPE vocabulary decodes every test case back to its text", "[tokenizer]") {
    const std::string name = "ggml-vocab-gpt-2.gguf";
    APR_SKIP_TEST_UNLESS(have_vocab(name), missing_vocab(name));
    // llama.cpp's GPT-2 vocabulary asks for Hugging Face's clean_up_tokenization_spaces (so does
    // HF's own GPT-2 decoder), which removes the space in front of "?", "!", ".", "," and
    // before some apostrophes. Text that has such a space cannot come back unchanged:
    const std::map<size_t, std::string> cleanup_changes_it = {
        {32, "\"How are you 😁 ?\" has a space before '?', which the cleanup removes"},
        {45, "\"...😁 ?我想...\" has a space before '?', which the cleanup removes"},
    };
    check_round_trip(name, cleanup_changes_it);
}

TEST_CASE("streaming detokenizer gives decode's text for every test case", "[tokenizer]") {
    for (const std::string name : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"}) {
        APR_SKIP_TEST_UNLESS(have_vocab(name), missing_vocab(name));
        auto file = GgufFile::open(vocab_file(name).string());
        auto tok = Tokenizer::from_gguf(*file);
        for (const auto& c : load_vocab_cases(name)) {
            INFO(name << ": \"" << c.text << "\"");
            StreamingDetokenizer stream(*tok);
            std::string streamed;
            for (int32_t id : c.ids) {
                const std::string part = stream.push(id);
                // Never half a character.
                CHECK(utf8::sanitize(part) == part);
                streamed += part;
            }
            streamed += stream.finish();
            CHECK(streamed == tok->decode(c.ids));
        }
    }
}

TEST_CASE("real vocabularies: special tokens, BOS policy and end of generation", "[tokenizer]") {
    {
        const std::string name = "ggml-vocab-llama-spm.gguf";
        APR_SKIP_TEST_UNLESS(have_vocab(name), missing_vocab(name));
        auto file = GgufFile::open(vocab_file(name).string());
        auto tok = Tokenizer::from_gguf(*file);
        CHECK(tok->model() == "llama");
        CHECK(tok->n_vocab() == 32000);
        CHECK(tok->add_bos());
        CHECK(tok->bos() == 1);
        CHECK(tok->eos() == 2);
        CHECK(tok->is_end_of_generation(2));
        CHECK_FALSE(tok->is_end_of_generation(1));
        CHECK(tok->encode("Hello world", true) == std::vector<int32_t>{1, 15043, 3186});
        CHECK(tok->encode("<s>Hello world", false, true) == std::vector<int32_t>{1, 15043, 3186});
        CHECK(tok->decode(std::vector<int32_t>{1, 15043, 3186, 2}) == "Hello world");
    }
    {
        const std::string name = "ggml-vocab-gpt-2.gguf";
        APR_SKIP_TEST_UNLESS(have_vocab(name), missing_vocab(name));
        auto file = GgufFile::open(vocab_file(name).string());
        auto tok = Tokenizer::from_gguf(*file);
        CHECK(tok->model() == "gpt2");
        CHECK_FALSE(tok->add_bos());
        CHECK(tok->eos() == 50256);
        CHECK(tok->is_end_of_generation(50256));
        CHECK(tok->encode("Hello world", true) == std::vector<int32_t>{15496, 995});
        CHECK(tok->encode("Hello world<|endoftext|>", false, true) == std::vector<int32_t>{15496, 995, 50256});
        CHECK(tok->decode(std::vector<int32_t>{15496, 995, 50256}) == "Hello world");
    }
}
