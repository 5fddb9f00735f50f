#include "tokenizer/pre_tokenizer.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <utility>

#include "tokenizer/tokenizer_error.hpp"
#include "tokenizer/utf8.hpp"

namespace apr {

namespace {

// The contractions of the Llama 3 / Qwen2 expressions. Their tokenizer.json spells them
// "(?i:'s|'t|...)"; llama.cpp writes the case-insensitivity out per letter, and so do we, so
// that only the contractions (and not the rest of the expression) ignore case.
#define APR_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

// GPT-2's expression (case-sensitive contractions, no trailing "\s+" alternative: a lone
// whitespace before a non-space is left between matches and becomes a piece of its own).
constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";

constexpr const char* kLlama3 =
    APR_CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Qwen2 differs from Llama 3 only in taking digits one at a time.
constexpr const char* kQwen2 =
    APR_CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

#undef APR_CONTRACTIONS

// DeepSeek LLM's letters: explicit ranges of cased letters (as in its tokenizer.json), written
// as code points because several of them (U+2126 OHM SIGN, U+212A KELVIN SIGN, U+1FBE, ...)
// have canonical equivalents that an editor could silently substitute.
constexpr const char* kDeepseekLlmLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293})"
    R"(\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A})"
    R"(\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556})"
    R"(\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF})"
    R"(\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D})"
    R"(\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D})"
    R"(\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3})"
    R"(\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107})"
    R"(\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D})"
    R"(\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184})"
    R"(\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D})"
    R"(\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF})"
    R"(\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F})"
    R"(\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2})"
    R"(\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)";

// ASCII and full-width punctuation, curly quotes, ideographic space and full stop.
constexpr const char* kDeepseekLlmPunct =
    R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)";

// CJK ideographs, the block range U+0800..U+4E00 and Hangul, as DeepSeek writes them.
constexpr const char* kDeepseekCjk = R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";

struct Definition {
    std::vector<std::string> names;
    std::vector<std::string> patterns;
};

const std::vector<Definition>& definitions() {
    static const std::vector<Definition> defs = {
        // llama.cpp's fallback for vocabularies without a (known) pre-tokenizer type.
        {{"default", ""},
         {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}},
        {{"gpt2", "gpt-2"}, {kGpt2}},
        {{"llama3", "llama-bpe", "llama-v3"}, {kLlama3}},
        {{"qwen2"}, {kQwen2}},
        {{"deepseek-llm"},
         {R"([\r\n])", kDeepseekLlmLetters, kDeepseekLlmPunct, R"(\s+$)", kDeepseekCjk, R"(\p{N}+)"}},
        {{"deepseek-coder"},
         {R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kDeepseekCjk, R"(\p{N})"}},
    };
    return defs;
}

}  // namespace

// One compiled expression. The compiled code is read-only after construction, so one
// PreTokenizer can split on several threads (each match allocates its own match data).
struct PreTokenizer::Expression {
    pcre2_code* code = nullptr;
    std::string pattern;

    explicit Expression(std::string pat) : pattern(std::move(pat)) {
        int error = 0;
        PCRE2_SIZE error_offset = 0;
        // DOLLAR_ENDONLY: "$" means the end of the piece only, as in the tokenizers these
        // expressions come from (Rust's regex, ECMAScript).
        code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &error, &error_offset, nullptr);
        if (code == nullptr) {
            PCRE2_UCHAR message[256];
            pcre2_get_error_message(error, message, sizeof(message));
            throw TokenizerError("pre-tokenizer expression does not compile at offset " +
                                 std::to_string(error_offset) + ": " + reinterpret_cast<const char*>(message));
        }
        // JIT is only a speed-up; without it (unsupported platform) matching still works.
        (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    }
    ~Expression() { pcre2_code_free(code); }
    Expression(const Expression&) = delete;
    Expression& operator=(const Expression&) = delete;

    // Appends to `out` the pieces of text[begin, end): each match, and each stretch between
    // matches. The expression sees only this piece (lookarounds and "$" stop at its ends).
    void cut(const std::string& text, size_t begin, size_t end,
             std::vector<std::pair<size_t, size_t>>& out, pcre2_match_data* match) const {
        const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + begin);
        const size_t length = end - begin;
        size_t offset = 0;
        size_t last_end = 0;
        while (offset < length) {
            // split() has already made the text valid UTF-8; without NO_UTF_CHECK PCRE2 would
            // re-validate the whole piece on every call, which is quadratic in its length.
            const int rc = pcre2_match(code, subject, length, offset, PCRE2_NO_UTF_CHECK, match, nullptr);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                PCRE2_UCHAR message[256];
                pcre2_get_error_message(rc, message, sizeof(message));
                throw TokenizerError(std::string("pre-tokenizer match failed: ") + reinterpret_cast<const char*>(message));
            }
            const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match);
            const size_t m_begin = ov[0], m_end = ov[1];
            if (m_end == m_begin) {
                // An empty match cuts nothing; step over one character and look again.
                offset = m_begin + utf8::sequence_length_from_lead(static_cast<uint8_t>(text[begin + m_begin]));
                continue;
            }
            if (m_begin > last_end) out.emplace_back(begin + last_end, begin + m_begin);
            out.emplace_back(begin + m_begin, begin + m_end);
            last_end = offset = m_end;
        }
        if (last_end < length) out.emplace_back(begin + last_end, end);
    }
};

PreTokenizer::PreTokenizer(std::string name, const std::vector<std::string>& patterns) : name_(std::move(name)) {
    for (const auto& p : patterns) expressions_.push_back(std::make_unique<Expression>(p));
}

PreTokenizer::~PreTokenizer() = default;

std::unique_ptr<PreTokenizer> PreTokenizer::for_name(std::string_view name) {
    for (const auto& def : definitions()) {
        for (const auto& n : def.names) {
            if (n == name) return std::unique_ptr<PreTokenizer>(new PreTokenizer(std::string(name), def.patterns));
        }
    }
    std::string known;
    for (const auto& n : known_names()) known += (known.empty() ? "" : ", ") + n;
    throw TokenizerError("unknown pre-tokenizer '" + std::string(name) + "' (tokenizer.ggml.pre); supported: " + known);
}

const std::vector<std::string>& PreTokenizer::known_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const auto& def : definitions())
            for (const auto& n : def.names)
                if (!n.empty()) v.push_back(n);
        return v;
    }();
    return names;
}

std::vector<std::string> PreTokenizer::split(std::string_view raw) const {
    const std::string text = utf8::sanitize(raw);
    std::vector<std::pair<size_t, size_t>> pieces;
    if (!text.empty()) pieces.emplace_back(0, text.size());

    for (const auto& expr : expressions_) {
        pcre2_match_data* match = pcre2_match_data_create_from_pattern(expr->code, nullptr);
        if (match == nullptr) throw std::bad_alloc();
        std::vector<std::pair<size_t, size_t>> next;
        next.reserve(pieces.size() * 2);
        try {
            for (const auto& [b, e] : pieces) expr->cut(text, b, e, next, match);
        } catch (...) {
            pcre2_match_data_free(match);
            throw;
        }
        pcre2_match_data_free(match);
        pieces = std::move(next);
    }

    std::vector<std::string> words;
    words.reserve(pieces.size());
    for (const auto& [b, e] : pieces) words.emplace_back(text, b, e - b);
    return words;
}

}  // namespace apr
