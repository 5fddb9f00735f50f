#include "tokenizer/space_cleanup.hpp"

namespace apr {

namespace {

// Each pass copies `in` and may drop the space just written before the current character; the
// first character is always kept. This is the same three-pass order as llama.cpp.

std::string drop_space_before_punctuation(const std::string& in) {
    std::string out;
    out.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        const char x = in[i];
        if (i > 0 && in[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) out.pop_back();
        out.push_back(x);
    }
    return out;
}

std::string join_lone_apostrophe(const std::string& in) {
    std::string out;
    out.reserve(in.size());
    bool previous_was_dropped_space = false;
    for (size_t i = 0; i < in.size(); ++i) {
        const char x = in[i];
        const bool previous_is_space = i > 0 && in[i - 1] == ' ' && !previous_was_dropped_space;
        previous_was_dropped_space = false;
        if (x == '\'' && i + 1 < in.size() && previous_is_space && in[i + 1] == ' ') {
            out.pop_back();  // the space before
            out.push_back(x);
            ++i;             // and the space after
            previous_was_dropped_space = true;
            continue;
        }
        out.push_back(x);
    }
    return out;
}

std::string attach_contractions(const std::string& in) {
    std::string out;
    out.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        const char x = in[i];
        if (i > 0 && in[i - 1] == ' ' && x == '\'' && i + 1 < in.size()) {
            const char x1 = in[i + 1];
            if (x1 == 's' || x1 == 'm') {
                out.pop_back();
            } else if (i + 2 < in.size()) {
                const char x2 = in[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) out.pop_back();
            }
        }
        out.push_back(x);
    }
    return out;
}

}  // namespace

std::string clean_up_spaces(std::string_view text) {
    return attach_contractions(join_lone_apostrophe(drop_space_before_punctuation(std::string(text))));
}

size_t safe_cut(std::string_view text, size_t limit) {
    for (size_t n = std::min(limit, text.size()); n >= 3; --n) {
        // Never inside a multi-byte character.
        if (n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) continue;
        bool quiet = true;
        for (size_t k = n - 3; k < n; ++k) {
            if (text[k] == ' ' || text[k] == '\'') quiet = false;
        }
        if (quiet) return n;
    }
    return 0;
}

}  // namespace apr
