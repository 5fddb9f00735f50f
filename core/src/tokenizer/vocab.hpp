// Vocab: everything a tokenizer knows about its vocabulary, read from GGUF metadata
// (tokenizer.ggml.*) with llama.cpp's defaults and fix-ups, so that the encoders and the
// detokenizer work on plain tables and never touch the file again.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace apr {

class GgufFile;

// tokenizer.ggml.token_type values (the numbering is the GGUF convention).
enum class TokenKind : int32_t {
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
};

// tokenizer.ggml.model: "llama" is SentencePiece-style (SPM), "gpt2" byte-level BPE.
enum class VocabKind { Spm, Bpe };

struct TokenInfo {
    std::string text;
    float score = 0.0f;
    TokenKind kind = TokenKind::Normal;
};

// Hash and equality that accept std::string_view keys without building a std::string.
struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct Vocab {
    VocabKind kind = VocabKind::Spm;
    std::string model_name;  // tokenizer.ggml.model as written
    std::string pre_name;    // tokenizer.ggml.pre as written ("" when absent)

    std::vector<TokenInfo> tokens;
    TokenIdMap ids;          // text -> id
    // BPE merges: "left\xFFright" -> rank (0 = merged first). 0xFF never occurs in UTF-8, so
    // the key is unambiguous.
    TokenIdMap merge_ranks;

    // Special ids, -1 when the vocabulary has none.
    int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, pad = -1;

    bool add_bos = false;
    bool add_eos = false;
    bool add_space_prefix = false;  // SPM: prepend ' ' to text that starts a fragment
    bool clean_spaces = false;      // decode: " ," -> ",", " 's" -> "'s", ... (HF clean_up_tokenization_spaces)
    bool ignore_merges = false;     // BPE: a whole pre-token that is in the vocabulary is one token

    std::set<int32_t> end_of_generation;
    // Control, user-defined and unknown tokens, longest text first: the order in which
    // special-token strings are cut out of the text before tokenizing.
    std::vector<int32_t> special_tokens_by_length;

    // Reads and checks tokenizer.ggml.*. Throws TokenizerError naming the missing or bad key,
    // an unknown model, or an unknown pre-tokenizer.
    static Vocab from_gguf(const GgufFile& file);

    std::optional<int32_t> find(std::string_view text) const {
        auto it = ids.find(text);
        if (it == ids.end()) return std::nullopt;
        return it->second;
    }
    std::optional<int32_t> merge_rank(std::string_view left, std::string_view right) const;
    uint32_t size() const { return static_cast<uint32_t>(tokens.size()); }
    bool is_control_or_unknown(int32_t id) const {
        const TokenKind k = tokens[static_cast<size_t>(id)].kind;
        return k == TokenKind::Control || k == TokenKind::Unknown;
    }
};

}  // namespace apr
