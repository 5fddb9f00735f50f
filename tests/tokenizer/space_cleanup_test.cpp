// clean_up_tokenization_spaces and the cut points that let the streaming detokenizer apply it
// piece by piece.
#include <catch2/catch.hpp>

#include <random>

#include "tokenizer/space_cleanup.hpp"

using namespace apr;

TEST_CASE("space cleanup follows Hugging Face's rules", "[tokenizer]") {
    CHECK(clean_up_spaces("a , b . c ! d ?") == "a, b. c! d?");
    CHECK(clean_up_spaces("rock ' n") == "rock'n");
    CHECK(clean_up_spaces("it 's I 'm we 're you 've") == "it's I'm we're you've");
    // " 't", " 'd" and " 'll" keep their space (as in llama.cpp).
    CHECK(clean_up_spaces("don 't I 'd we 'll") == "don 't I 'd we 'll");
    CHECK(clean_up_spaces(" ,x") == ",x");
    CHECK(clean_up_spaces("") == "");
}

TEST_CASE("space cleanup of a prefix cut at safe_cut does not depend on what follows", "[tokenizer]") {
    std::mt19937 rng(7);
    const std::string alphabet = " ',.?!sdmrevtlx";
    for (int trial = 0; trial < 2000; ++trial) {
        std::string text;
        const int len = static_cast<int>(rng() % 14);
        for (int i = 0; i < len; ++i) text.push_back(alphabet[rng() % alphabet.size()]);
        for (size_t limit = 0; limit <= text.size(); ++limit) {
            const size_t cut = safe_cut(text, limit);
            REQUIRE(cut <= limit);
            if (cut == 0) continue;
            INFO("\"" << text << "\" cut at " << cut);
            CHECK(clean_up_spaces(text.substr(0, cut)) + clean_up_spaces(text.substr(cut)) == clean_up_spaces(text));
        }
    }
}
