// Byte-level BPE (tokenizer.ggml.model = "gpt2") encoding of one text fragment, as llama.cpp
// does it: the pre-tokenizer cuts the text into words; each word's bytes are spelled with
// GPT-2's byte-to-unicode mapping and split into characters; then adjacent pairs listed in
// tokenizer.ggml.merges are merged, lowest rank first (leftmost on ties), until none is left.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/pre_tokenizer.hpp"
#include "tokenizer/vocab.hpp"

namespace apr {

// Appends the ids of `text` to `out`.
void bpe_encode(const Vocab& vocab, const PreTokenizer& pre, std::string_view text, std::vector<int32_t>& out);

}  // namespace apr
