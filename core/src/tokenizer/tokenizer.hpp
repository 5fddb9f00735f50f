// Tokenizer: text <-> token ids for a model, built from the tokenizer.ggml.* metadata of its
// GGUF file. Two families, both behaving exactly like llama.cpp's:
//   - "llama": SentencePiece-style. Spaces become U+2581, a leading space is added to text
//     that starts the input or follows a special token (add_space_prefix), pairs merge by the
//     highest vocabulary score, unknown characters fall back to byte tokens <0xXX>.
//   - "gpt2": byte-level BPE. A pre-tokenizer chosen by tokenizer.ggml.pre cuts words, bytes
//     are spelled with GPT-2's byte-to-unicode mapping, pairs merge by tokenizer.ggml.merges.
// A Tokenizer is immutable after from_gguf; all its methods may be called from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_error.hpp"

namespace apr {

class GgufFile;

class Tokenizer {
public:
    // Throws TokenizerError naming what is missing or wrong (key, model name, pre-tokenizer).
    static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& file);
    ~Tokenizer();
    Tokenizer(const Tokenizer&) = delete;
    Tokenizer& operator=(const Tokenizer&) = delete;

    // add_special: add BOS / EOS where the vocabulary asks for them (add_bos(), add_eos()).
    // parse_special: recognise control-token strings such as "<s>" or "<|im_end|>" in `text`
    // and emit their ids; when false they are tokenized as plain text. (User-defined tokens
    // are always recognised, as in llama.cpp and Hugging Face.)
    std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special = false) const;

    // The bytes this token stands for in running text: U+2581 shown as a space, a byte token
    // as its byte (possibly part of a multi-byte character), BPE spelling undone. Control and
    // unknown tokens give "" unless `render_special` (then their text, e.g. "</s>").
    // Throws TokenizerError for an id outside [0, n_vocab()).
    std::string token_to_piece(int32_t id, bool render_special = false) const;

    // The text of a whole sequence, as llama.cpp's detokenize without special tokens: pieces
    // joined, control tokens left out, and (SPM) the space that encode added in front of the
    // text dropped from the first piece that has text; BPE vocabularies that ask for it get
    // clean_up_tokenization_spaces. `at_text_start` = false decodes a continuation (e.g. the
    // generated part after a prompt), where that leading space is real and kept.
    // One deliberate difference from llama.cpp: after a leading BOS (or other control token)
    // llama.cpp keeps that space; we drop it, because encode added it there too, so that
    // decode(encode(text, true)) == text.
    std::string decode(std::span<const int32_t> ids, bool at_text_start = true) const;

    int32_t bos() const;  // -1 when the vocabulary has none
    int32_t eos() const;  // -1 when the vocabulary has none
    bool add_bos() const;
    bool add_eos() const;
    // EOS, EOT/EOM, and tokens llama.cpp recognises by text ("<|eot_id|>", "<|im_end|>", ...).
    bool is_end_of_generation(int32_t id) const;
    // Control or unknown tokens: never part of the text (e.g. BOS).
    bool is_control(int32_t id) const;
    uint32_t n_vocab() const;
    const std::string& model() const;          // tokenizer.ggml.model: "llama" or "gpt2"
    const std::string& pre_tokenizer() const;  // tokenizer.ggml.pre ("" when absent)
    const std::string& token_text(int32_t id) const;  // the raw vocabulary entry

    // For the streaming detokenizer: whether decode drops the leading space / cleans spaces.
    bool strips_leading_space() const;
    bool cleans_spaces() const;

private:
    struct Impl;
    explicit Tokenizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Turns generated ids into text as they arrive. push() returns only complete UTF-8: bytes of a
// multi-byte character split across byte tokens are held back until the character is complete
// (and, for vocabularies that clean spaces, a few trailing bytes whose cleanup depends on what
// follows). finish() returns whatever is still held. The concatenation of every push() and
// finish() equals Tokenizer::decode of the same ids with the same `at_text_start`.
class StreamingDetokenizer {
public:
    explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool at_text_start = true);
    std::string push(int32_t id);
    std::string finish();

private:
    std::string release(bool everything);

    const Tokenizer& tokenizer_;
    bool strip_next_space_;  // the first piece with text still has to lose its added space
    std::string pending_;    // decoded bytes not yet returned
};

}  // namespace apr
