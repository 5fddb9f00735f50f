// Hugging Face's clean_up_tokenization_spaces, as llama.cpp applies it when detokenizing
// vocabularies that ask for it (gpt2, llama3): " ?", " !", " .", " ," lose their space;
// " ' " becomes "'"; " 's", " 'm", " 're", " 've" lose their space.
//
// The rules only ever look one character back and two ahead around a space or an apostrophe,
// so text can be cleaned piece by piece: safe_cut() says where a prefix can be cleaned on its
// own without knowing what follows.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace apr {

std::string clean_up_spaces(std::string_view text);

// The largest n <= limit such that clean_up_spaces(text[0, n)) + clean_up_spaces(text[n, ...))
// equals clean_up_spaces(text) whatever follows: the three bytes before n are neither spaces
// nor apostrophes, and n is not inside a UTF-8 character. Returns 0 when there is no such cut.
size_t safe_cut(std::string_view text, size_t limit);

}  // namespace apr
