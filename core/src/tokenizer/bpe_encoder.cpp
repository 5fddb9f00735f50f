#include "tokenizer/bpe_encoder.hpp"

#include <queue>
#include <string>

#include "tokenizer/byte_unicode.hpp"
#include "tokenizer/utf8.hpp"

namespace apr {

namespace {

struct Symbol {
    int prev;
    int next;
    size_t begin;
    size_t length;
};

struct Candidate {
    int left;
    int right;
    int32_t rank;
    std::string text;  // the merged text when queued, to detect a pair gone stale
};

// Lowest rank first; on equal ranks the leftmost pair.
struct WorseCandidate {
    bool operator()(const Candidate& a, const Candidate& b) const {
        return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
};

void encode_word(const Vocab& vocab, const std::string& word, std::vector<int32_t>& out) {
    // Llama 3 style vocabularies take a word that is itself a token as it is, merges or not.
    if (vocab.ignore_merges) {
        if (auto id = vocab.find(word)) {
            out.push_back(*id);
            return;
        }
    }

    std::vector<Symbol> symbols;
    for (size_t pos = 0; pos < word.size();) {
        const size_t len = std::min(utf8::sequence_length_from_lead(static_cast<uint8_t>(word[pos])), word.size() - pos);
        const int index = static_cast<int>(symbols.size());
        symbols.push_back({index - 1, pos + len == word.size() ? -1 : index + 1, pos, len});
        pos += len;
    }
    auto text_of = [&](const Symbol& s) { return std::string_view(word).substr(s.begin, s.length); };

    std::priority_queue<Candidate, std::vector<Candidate>, WorseCandidate> queue;
    auto consider = [&](int left, int right) {
        if (left < 0 || right < 0) return;
        const std::string_view l = text_of(symbols[left]);
        const std::string_view r = text_of(symbols[right]);
        if (auto rank = vocab.merge_rank(l, r)) {
            std::string merged(l);
            merged.append(r);
            queue.push({left, right, *rank, std::move(merged)});
        }
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) consider(i - 1, i);

    while (!queue.empty()) {
        const Candidate c = queue.top();
        queue.pop();
        Symbol& left = symbols[c.left];
        Symbol& right = symbols[c.right];
        if (left.length == 0 || right.length == 0) continue;
        if (left.length + right.length != c.text.size() ||
            std::string_view(word).substr(left.begin, c.text.size()) != c.text)
            continue;  // stale: a side changed since the pair was queued
        left.length += right.length;
        right.length = 0;
        left.next = right.next;
        if (right.next >= 0) symbols[right.next].prev = c.left;
        consider(left.prev, c.left);
        consider(c.left, left.next);
    }

    for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
        const std::string_view piece = text_of(symbols[i]);
        if (auto id = vocab.find(piece)) {
            out.push_back(*id);
            continue;
        }
        // A merge result missing from the vocabulary (a malformed vocabulary): llama.cpp then
        // looks each byte of the spelled piece up as a one-byte token and drops what is not
        // found; we do the same so that ids stay comparable.
        for (char b : piece) {
            if (auto id = vocab.find(std::string_view(&b, 1))) out.push_back(*id);
        }
    }
}

}  // namespace

void bpe_encode(const Vocab& vocab, const PreTokenizer& pre, std::string_view text, std::vector<int32_t>& out) {
    for (const std::string& word : pre.split(text)) encode_word(vocab, byte_unicode::encode(word), out);
}

}  // namespace apr
