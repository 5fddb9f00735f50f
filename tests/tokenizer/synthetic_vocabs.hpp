// Small hand-made vocabularies, written as in-memory GGUF files, whose tokenizations can be
// worked out by hand.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "tokenizer/gguf_builder.hpp"

namespace apr::test {

// GGUF token types.
constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6;

// SPM: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then the pieces given with their scores.
// Ids of the pieces: 259, 260, ...
inline GgufBuilder spm_vocab(const std::vector<std::pair<std::string, float>>& pieces) {
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
    std::vector<float> scores = {0, 0, 0};
    std::vector<int32_t> types = {kUnknown, kControl, kControl};
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        tokens.push_back(name);
        scores.push_back(0);
        types.push_back(kByte);
    }
    for (const auto& [text, score] : pieces) {
        tokens.push_back(text);
        scores.push_back(score);
        types.push_back(kNormal);
    }
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "llama").strings("tokenizer.ggml.tokens", tokens)
        .floats("tokenizer.ggml.scores", scores).int32s("tokenizer.ggml.token_type", types);
    return b;
}

constexpr int32_t spm_byte(uint8_t b) { return 3 + b; }
constexpr int32_t kSpmFirstPiece = 259;

}  // namespace apr::test
