// SentencePiece-style (tokenizer.ggml.model = "llama") encoding of one text fragment, as
// llama.cpp does it: the text is split into UTF-8 characters, then adjacent pairs whose
// concatenation is a vocabulary token are merged, best score first (leftmost on ties), until no
// pair is left; a final piece that is not a token is spelled with byte tokens <0xXX>.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.hpp"

namespace apr {

// Appends the ids of `escaped` (spaces already replaced by U+2581) to `out`. Throws
// TokenizerError when a byte needs a byte token the vocabulary does not have.
void spm_encode(const Vocab& vocab, std::string_view escaped, std::vector<int32_t>& out);

}  // namespace apr
