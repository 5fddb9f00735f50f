#include "tokenizer/special_partition.hpp"

namespace apr {

std::vector<Fragment> partition_special_tokens(const Vocab& vocab, std::string_view text, bool parse_special) {
    std::vector<Fragment> fragments;
    if (text.empty()) return fragments;
    fragments.push_back({-1, text});

    for (int32_t id : vocab.special_tokens_by_length) {
        if (!parse_special && vocab.is_control_or_unknown(id)) continue;
        const std::string_view special = vocab.tokens[static_cast<size_t>(id)].text;

        std::vector<Fragment> next;
        next.reserve(fragments.size());
        for (const Fragment& f : fragments) {
            if (f.is_token()) {
                next.push_back(f);
                continue;
            }
            std::string_view rest = f.text;
            for (size_t at; (at = rest.find(special)) != std::string_view::npos;) {
                if (at > 0) next.push_back({-1, rest.substr(0, at)});
                next.push_back({id, {}});
                rest.remove_prefix(at + special.size());
            }
            if (!rest.empty()) next.push_back({-1, rest});
        }
        fragments = std::move(next);
    }
    return fragments;
}

}  // namespace apr
