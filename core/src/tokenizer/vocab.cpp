#include "tokenizer/vocab.hpp"

#include <algorithm>
#include <cmath>

#include "model/gguf_file.hpp"
#include "tokenizer/pre_tokenizer.hpp"
#include "tokenizer/tokenizer_error.hpp"

namespace apr {

namespace {

constexpr const char* kModel = "tokenizer.ggml.model";
constexpr const char* kPre = "tokenizer.ggml.pre";
constexpr const char* kTokens = "tokenizer.ggml.tokens";
constexpr const char* kScores = "tokenizer.ggml.scores";
constexpr const char* kTokenType = "tokenizer.ggml.token_type";
constexpr const char* kMerges = "tokenizer.ggml.merges";


[[noreturn]] void wrong_type(std::string_view key, const GgufValue& v, std::string_view expected) {
    std::string got = gguf_type_name(v.type);
    if (v.type == GgufType::ARRAY) got = "array of " + gguf_type_name(v.array_type);
    throw TokenizerError(std::string(key) + " has type " + got + ", expected " + std::string(expected));
}

// The metadata readers below look at GgufValue directly, so that a value of the wrong type is
// reported as a tokenizer problem naming the key.

std::optional<std::string> read_string(const GgufFile& f, std::string_view key) {
    const GgufValue* v = f.find(key);
    if (v == nullptr) return std::nullopt;
    if (v->type != GgufType::STRING) wrong_type(key, *v, "string");
    if (const auto* s = std::get_if<std::string>(&v->scalar)) return *s;
    wrong_type(key, *v, "string");
}

std::optional<int64_t> read_integer(const GgufFile& f, std::string_view key) {
    const GgufValue* v = f.find(key);
    if (v == nullptr) return std::nullopt;
    if (const auto* i = std::get_if<int64_t>(&v->scalar)) return *i;
    if (const auto* u = std::get_if<uint64_t>(&v->scalar)) {
        return *u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(*u);
    }
    wrong_type(key, *v, "an integer");
}

std::optional<bool> read_bool(const GgufFile& f, std::string_view key) {
    const GgufValue* v = f.find(key);
    if (v == nullptr) return std::nullopt;
    if (const auto* b = std::get_if<bool>(&v->scalar)) return *b;
    // Some writers store flags as integers.
    if (const auto* i = std::get_if<int64_t>(&v->scalar)) return *i != 0;
    if (const auto* u = std::get_if<uint64_t>(&v->scalar)) return *u != 0;
    wrong_type(key, *v, "bool");
}

bool is_integer(GgufType t) {
    switch (t) {
        case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16:
        case GgufType::UINT32: case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64:
            return true;
        default:
            return false;
    }
}

const GgufValue* read_array(const GgufFile& f, std::string_view key) {
    const GgufValue* v = f.find(key);
    if (v != nullptr && v->type != GgufType::ARRAY) wrong_type(key, *v, "an array");
    return v;
}

const std::vector<std::string>* read_string_array(const GgufFile& f, std::string_view key) {
    const GgufValue* v = read_array(f, key);
    if (v == nullptr) return nullptr;
    if (v->array_type != GgufType::STRING) wrong_type(key, *v, "array of string");
    return &v->strings;
}

// Texts that llama.cpp recognises as ending a turn although the metadata does not say so.
bool looks_like_end_of_turn(std::string_view t) {
    static const char* const kTexts[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
        "<EOT>", "_<EOT>", "<|eom_id|>", "<end_of_utterance>", "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
    };
    return std::any_of(std::begin(kTexts), std::end(kTexts), [&](const char* s) { return t == s; });
}

bool looks_like_eot(std::string_view t) {
    return t != "<|eom_id|>" && looks_like_end_of_turn(t);
}

void read_tokens(const GgufFile& f, Vocab& v) {
    const auto* texts = read_string_array(f, kTokens);
    if (texts == nullptr) throw TokenizerError(std::string("missing ") + kTokens + " (the vocabulary)");
    if (texts->empty()) throw TokenizerError(std::string(kTokens) + " is empty");
    if (texts->size() > static_cast<size_t>(INT32_MAX)) throw TokenizerError(std::string(kTokens) + " is too long");
    const size_t n = texts->size();

    const GgufValue* scores = read_array(f, kScores);
    if (scores != nullptr) {
        const size_t have = scores->floats.empty() ? scores->ints.size() : scores->floats.size();
        if (scores->array_type != GgufType::FLOAT32 && scores->array_type != GgufType::FLOAT64 &&
            scores->array_type != GgufType::INT32)
            wrong_type(kScores, *scores, "array of float32");
        if (have < n)
            throw TokenizerError(std::string(kScores) + " has " + std::to_string(have) + " entries for " +
                                 std::to_string(n) + " tokens");
    }
    const GgufValue* types = read_array(f, kTokenType);
    if (types != nullptr) {
        if (!is_integer(types->array_type)) wrong_type(kTokenType, *types, "array of int32");
        if (types->ints.size() < n)
            throw TokenizerError(std::string(kTokenType) + " has " + std::to_string(types->ints.size()) +
                                 " entries for " + std::to_string(n) + " tokens");
    }

    v.tokens.resize(n);
    v.ids.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        TokenInfo& t = v.tokens[i];
        t.text = (*texts)[i];
        // As llama.cpp: an empty text would match everywhere; give it a text nothing contains.
        if (t.text.empty()) t.text = "[EMPTY_" + std::to_string(i) + "]";
        if (scores != nullptr) {
            t.score = scores->floats.empty() ? static_cast<float>(scores->ints[i]) : static_cast<float>(scores->floats[i]);
        }
        if (types != nullptr) {
            const int64_t k = types->ints[i];
            t.kind = (k >= 0 && k <= 6) ? static_cast<TokenKind>(k) : TokenKind::Undefined;
        }
        auto [it, inserted] = v.ids.emplace(t.text, static_cast<int32_t>(i));
        if (!inserted)
            throw TokenizerError("duplicate token in " + std::string(kTokens) + ": '" + t.text + "' has ids " +
                                 std::to_string(it->second) + " and " + std::to_string(i));
    }
}

void read_merges(const GgufFile& f, Vocab& v) {
    const auto* merges = read_string_array(f, kMerges);
    if (merges == nullptr) throw TokenizerError(std::string("missing ") + kMerges + " (required by a gpt2 tokenizer)");
    v.merge_ranks.reserve(merges->size());
    for (size_t rank = 0; rank < merges->size(); ++rank) {
        const std::string& m = (*merges)[rank];
        // "left right"; the separator is the first space after the first byte (a left part
        // can itself be a space in vocabularies without byte spelling).
        const size_t sep = m.find(' ', 1);
        if (sep == std::string::npos)
            throw TokenizerError(std::string(kMerges) + "[" + std::to_string(rank) + "] = '" + m +
                                 "' is not two tokens separated by a space");
        std::string key = m.substr(0, sep);
        key.push_back('\xFF');
        key.append(m, sep + 1);
        v.merge_ranks.emplace(std::move(key), static_cast<int32_t>(rank));  // the first rank wins
    }
}

void read_special_ids(const GgufFile& f, Vocab& v) {
    const auto n = static_cast<int64_t>(v.tokens.size());
    // A default that is out of range means "none"; an out-of-range id from the metadata is
    // ignored (llama.cpp does the same; some files carry such padding ids).
    auto read = [&](const char* key, int32_t& id) {
        if (id >= n) id = -1;
        if (auto value = read_integer(f, key); value && *value >= 0 && *value < n) id = static_cast<int32_t>(*value);
    };
    read("tokenizer.ggml.bos_token_id", v.bos);
    read("tokenizer.ggml.eos_token_id", v.eos);
    read("tokenizer.ggml.eot_token_id", v.eot);
    read("tokenizer.ggml.eom_token_id", v.eom);
    read("tokenizer.ggml.unknown_token_id", v.unk);
    read("tokenizer.ggml.padding_token_id", v.pad);

    if (auto b = read_bool(f, "tokenizer.ggml.add_bos_token")) v.add_bos = *b;
    if (auto b = read_bool(f, "tokenizer.ggml.add_eos_token")) v.add_eos = *b;
    if (v.add_bos && v.bos < 0)
        throw TokenizerError("tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set");
    if (v.add_eos && v.eos < 0)
        throw TokenizerError("tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not set");
}

// llama.cpp's fix-ups for vocabularies whose metadata under-specifies the end of a turn: known
// end-of-turn texts become control tokens and end generation.
void find_end_of_generation(Vocab& v) {
    for (size_t i = 0; i < v.tokens.size(); ++i) {
        TokenInfo& t = v.tokens[i];
        const auto id = static_cast<int32_t>(i);
        if (v.eot < 0 && looks_like_eot(t.text)) v.eot = id;
        if (v.eom < 0 && t.text == "<|eom_id|>") v.eom = id;
        if (looks_like_end_of_turn(t.text)) {
            v.end_of_generation.insert(id);
            t.kind = TokenKind::Control;
        }
    }
    for (int32_t id : {v.eos, v.eot, v.eom}) {
        if (id >= 0) v.end_of_generation.insert(id);
    }
}

void order_special_tokens(Vocab& v) {
    for (size_t i = 0; i < v.tokens.size(); ++i) {
        const TokenKind k = v.tokens[i].kind;
        if (k == TokenKind::Control || k == TokenKind::UserDefined || k == TokenKind::Unknown)
            v.special_tokens_by_length.push_back(static_cast<int32_t>(i));
    }
    // Longest first, so that "<|im_end|>" is cut out before a shorter token it contains; ties in
    // id order so the result does not depend on the sort's stability.
    std::stable_sort(v.special_tokens_by_length.begin(), v.special_tokens_by_length.end(), [&](int32_t a, int32_t b) {
        return v.tokens[static_cast<size_t>(a)].text.size() > v.tokens[static_cast<size_t>(b)].text.size();
    });
}

}  // namespace

Vocab Vocab::from_gguf(const GgufFile& f) {
    Vocab v;
    auto model = read_string(f, kModel);
    if (!model) throw TokenizerError(std::string("missing ") + kModel + " (the tokenizer model)");
    v.model_name = *model;
    v.pre_name = read_string(f, kPre).value_or("");

    if (v.model_name == "llama") {
        v.kind = VocabKind::Spm;
        v.bos = 1;
        v.eos = 2;
        v.unk = 0;
        v.add_bos = true;
        v.add_space_prefix = true;
    } else if (v.model_name == "gpt2") {
        v.kind = VocabKind::Bpe;
        v.bos = 11;  // llama.cpp's defaults for gpt2 vocabularies without the ids
        v.eos = 11;
        v.clean_spaces = true;
        // Validate the pre-tokenizer name now, so an unknown one fails at load time.
        (void)PreTokenizer::for_name(v.pre_name);
        if (v.pre_name == "llama3" || v.pre_name == "llama-bpe" || v.pre_name == "llama-v3") {
            v.ignore_merges = true;
            v.add_bos = true;
        } else if (v.pre_name == "qwen2" || v.pre_name == "deepseek-llm" || v.pre_name == "deepseek-coder") {
            v.clean_spaces = false;
        }
    } else {
        throw TokenizerError("unknown tokenizer model '" + v.model_name + "' (" + kModel +
                             "); supported: llama (SentencePiece), gpt2 (byte-level BPE)");
    }
    if (auto prefix = read_bool(f, "tokenizer.ggml.add_space_prefix")) v.add_space_prefix = *prefix;

    read_tokens(f, v);
    if (v.kind == VocabKind::Bpe) read_merges(f, v);
    read_special_ids(f, v);
    find_end_of_generation(v);
    order_special_tokens(v);
    return v;
}

std::optional<int32_t> Vocab::merge_rank(std::string_view left, std::string_view right) const {
    std::string key;
    key.reserve(left.size() + right.size() + 1);
    key.append(left);
    key.push_back('\xFF');
    key.append(right);
    auto it = merge_ranks.find(key);
    if (it == merge_ranks.end()) return std::nullopt;
    return it->second;
}

}  // namespace apr
