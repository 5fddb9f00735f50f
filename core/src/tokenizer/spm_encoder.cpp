#include "tokenizer/spm_encoder.hpp"

#include <cstdio>
#include <queue>

#include "tokenizer/tokenizer_error.hpp"
#include "tokenizer/utf8.hpp"

namespace apr {

namespace {

// A run of the text, linked to its neighbours; merged-away symbols keep length 0.
struct Symbol {
    int prev;
    int next;
    size_t begin;
    size_t length;
};

struct Candidate {
    int left;
    int right;
    float score;
    size_t length;  // bytes of the merged text, to detect a pair gone stale
};

// Highest score first; on equal scores the leftmost pair.
struct WorseCandidate {
    bool operator()(const Candidate& a, const Candidate& b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
};

int32_t byte_token(const Vocab& vocab, uint8_t byte) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", byte);
    if (auto id = vocab.find(name)) return *id;
    // Some vocabularies spell a byte as the one-character token itself.
    const char raw[1] = {static_cast<char>(byte)};
    if (auto id = vocab.find(std::string_view(raw, 1))) return *id;
    throw TokenizerError(std::string("the vocabulary has no byte token ") + name + " for a character it cannot spell");
}

}  // namespace

void spm_encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) {
    std::vector<Symbol> symbols;
    for (size_t pos = 0; pos < text.size();) {
        const size_t len = std::min(utf8::sequence_length_from_lead(static_cast<uint8_t>(text[pos])), text.size() - pos);
        const int index = static_cast<int>(symbols.size());
        symbols.push_back({index - 1, pos + len == text.size() ? -1 : index + 1, pos, len});
        pos += len;
    }

    std::priority_queue<Candidate, std::vector<Candidate>, WorseCandidate> queue;
    auto consider = [&](int left, int right) {
        if (left < 0 || right < 0) return;
        const std::string_view merged = text.substr(symbols[left].begin, symbols[left].length + symbols[right].length);
        if (auto id = vocab.find(merged)) {
            queue.push({left, right, vocab.tokens[static_cast<size_t>(*id)].score, merged.size()});
        }
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) consider(i - 1, i);

    while (!queue.empty()) {
        const Candidate c = queue.top();
        queue.pop();
        Symbol& left = symbols[c.left];
        Symbol& right = symbols[c.right];
        // Stale: one side was merged into something else since this pair was queued.
        if (left.length == 0 || right.length == 0 || left.length + right.length != c.length) continue;
        left.length += right.length;
        right.length = 0;
        left.next = right.next;
        if (right.next >= 0) symbols[right.next].prev = c.left;
        consider(left.prev, c.left);
        consider(c.left, left.next);
    }

    // Every merged symbol is a token by construction; what is left unmerged and unknown is
    // a single character, spelled byte by byte.
    for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
        const std::string_view piece = text.substr(symbols[i].begin, symbols[i].length);
        if (auto id = vocab.find(piece)) {
            out.push_back(*id);
        } else {
            for (char b : piece) out.push_back(byte_token(vocab, static_cast<uint8_t>(b)));
        }
    }
}

}  // namespace apr
