#include "tokenizer/tokenizer.hpp"

#include "model/gguf_file.hpp"
#include "tokenizer/bpe_encoder.hpp"
#include "tokenizer/byte_unicode.hpp"
#include "tokenizer/pre_tokenizer.hpp"
#include "tokenizer/space_cleanup.hpp"
#include "tokenizer/special_partition.hpp"
#include "tokenizer/spm_encoder.hpp"
#include "tokenizer/vocab.hpp"

namespace apr {

namespace {

constexpr std::string_view kEscapedSpace = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
    std::string out;
    out.reserve(text.size());
    size_t pos = 0;
    for (size_t at; (at = text.find(from, pos)) != std::string_view::npos; pos = at + from.size()) {
        out.append(text.substr(pos, at - pos));
        out.append(to);
    }
    out.append(text.substr(pos));
    return out;
}

// "<0xAB>" -> 0xAB; nullopt for anything else.
std::optional<char> parse_byte_token(std::string_view text) {
    if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return std::nullopt;
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    const int hi = hex(text[3]), lo = hex(text[4]);
    if (hi < 0 || lo < 0) return std::nullopt;
    return static_cast<char>(hi * 16 + lo);
}

// What a token stands for when special tokens are rendered (llama.cpp's piece cache).
std::string render_piece(const Vocab& vocab, const TokenInfo& t) {
    switch (t.kind) {
        case TokenKind::Control:
        case TokenKind::Unknown:
        case TokenKind::UserDefined:
            return t.text;
        case TokenKind::Normal:
            return vocab.kind == VocabKind::Spm ? replace_all(t.text, kEscapedSpace, " ") : byte_unicode::decode(t.text);
        case TokenKind::Byte:
            if (auto b = parse_byte_token(t.text)) return std::string(1, *b);
            return t.text;  // a byte token not spelled <0xXX>: its text is the best we know
        case TokenKind::Undefined:
        case TokenKind::Unused:
            break;
    }
    return {};  // llama.cpp renders unused / undefined tokens as nothing
}

}  // namespace

struct Tokenizer::Impl {
    Vocab vocab;
    std::unique_ptr<PreTokenizer> pre;  // BPE only
    std::vector<std::string> pieces;    // per id, special tokens rendered

    void check(int32_t id) const {
        if (id < 0 || static_cast<size_t>(id) >= vocab.tokens.size())
            throw TokenizerError("token id " + std::to_string(id) + " is outside the vocabulary (n_vocab " +
                                 std::to_string(vocab.tokens.size()) + ")");
    }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& file) {
    auto impl = std::make_unique<Impl>();
    impl->vocab = Vocab::from_gguf(file);
    if (impl->vocab.kind == VocabKind::Bpe) impl->pre = PreTokenizer::for_name(impl->vocab.pre_name);
    impl->pieces.reserve(impl->vocab.tokens.size());
    for (const TokenInfo& t : impl->vocab.tokens) impl->pieces.push_back(render_piece(impl->vocab, t));
    return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
    const Vocab& v = impl_->vocab;
    std::vector<int32_t> out;
    if (add_special && v.add_bos) out.push_back(v.bos);

    // SPM adds its leading space to the first text and to text right after a special token.
    bool after_special = true;
    for (const Fragment& f : partition_special_tokens(v, text, parse_special)) {
        if (f.is_token()) {
            out.push_back(f.token);
            after_special = true;
            continue;
        }
        if (v.kind == VocabKind::Spm) {
            std::string prefixed = (v.add_space_prefix && after_special) ? " " : "";
            prefixed.append(f.text);
            spm_encode(v, replace_all(prefixed, " ", kEscapedSpace), out);
        } else {
            bpe_encode(v, *impl_->pre, f.text, out);
        }
        after_special = false;
    }

    if (add_special && v.add_eos) out.push_back(v.eos);
    return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
    impl_->check(id);
    if (!render_special && impl_->vocab.is_control_or_unknown(id)) return {};
    return impl_->pieces[static_cast<size_t>(id)];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool at_text_start) const {
    std::string text;
    bool strip_space = at_text_start && strips_leading_space();
    for (int32_t id : ids) {
        std::string piece = token_to_piece(id);
        if (piece.empty()) continue;
        if (strip_space && piece.front() == ' ') piece.erase(0, 1);
        strip_space = false;
        text += piece;
    }
    return cleans_spaces() ? clean_up_spaces(text) : text;
}

int32_t Tokenizer::bos() const { return impl_->vocab.bos; }
int32_t Tokenizer::eos() const { return impl_->vocab.eos; }
bool Tokenizer::add_bos() const { return impl_->vocab.add_bos; }
bool Tokenizer::add_eos() const { return impl_->vocab.add_eos; }
bool Tokenizer::is_end_of_generation(int32_t id) const { return impl_->vocab.end_of_generation.count(id) > 0; }
bool Tokenizer::is_control(int32_t id) const {
    impl_->check(id);
    return impl_->vocab.is_control_or_unknown(id);
}
uint32_t Tokenizer::n_vocab() const { return impl_->vocab.size(); }
const std::string& Tokenizer::model() const { return impl_->vocab.model_name; }
const std::string& Tokenizer::pre_tokenizer() const { return impl_->vocab.pre_name; }
const std::string& Tokenizer::token_text(int32_t id) const {
    impl_->check(id);
    return impl_->vocab.tokens[static_cast<size_t>(id)].text;
}
bool Tokenizer::strips_leading_space() const { return impl_->vocab.add_space_prefix; }
bool Tokenizer::cleans_spaces() const { return impl_->vocab.clean_spaces; }

}  // namespace apr
