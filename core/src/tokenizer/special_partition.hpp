// Cutting special-token strings out of a text before it is tokenized (llama.cpp's
// tokenizer_st_partition): for each special token, longest first, every occurrence in the
// remaining text fragments becomes that token, and the text around it stays text.
// Control and unknown tokens are only recognised when parse_special is true; user-defined
// tokens always are (as in Hugging Face tokenizers).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.hpp"

namespace apr {

struct Fragment {
    int32_t token = -1;     // >= 0: a special token
    std::string_view text;  // otherwise: raw text, a view into the caller's string
    bool is_token() const { return token >= 0; }
};

std::vector<Fragment> partition_special_tokens(const Vocab& vocab, std::string_view text, bool parse_special);

}  // namespace apr
