#include "tokenizer/space_cleanup.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/utf8.hpp"

namespace apr {

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer, bool at_text_start)
    : tokenizer_(tokenizer), strip_next_space_(at_text_start && tokenizer.strips_leading_space()) {}

std::string StreamingDetokenizer::push(int32_t id) {
    std::string piece = tokenizer_.token_to_piece(id);
    if (!piece.empty()) {
        // Same rule as Tokenizer::decode: the first piece with text loses the added space.
        if (strip_next_space_ && piece.front() == ' ') piece.erase(0, 1);
        strip_next_space_ = false;
        pending_ += piece;
    }
    return release(false);
}

std::string StreamingDetokenizer::finish() { return release(true); }

std::string StreamingDetokenizer::release(bool everything) {
    size_t n = everything ? pending_.size() : utf8::releasable_prefix(pending_);
    if (tokenizer_.cleans_spaces() && !everything) n = safe_cut(pending_, n);
    if (n == 0) return {};
    std::string out = pending_.substr(0, n);
    pending_.erase(0, n);
    return tokenizer_.cleans_spaces() ? clean_up_spaces(out) : out;
}

}  // namespace apr
