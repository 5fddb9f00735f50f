#include "tokenizer/byte_unicode.hpp"

#include <array>

#include "tokenizer/utf8.hpp"

namespace apr::byte_unicode {

namespace {

bool stands_for_itself(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Tables {
    std::array<uint32_t, 256> to_cp{};
    // Spellings all lie below U+0144 (0x100 + 68), so a flat table covers the inverse.
    std::array<int16_t, 0x200> to_byte{};

    Tables() {
        to_byte.fill(-1);
        uint32_t next = 0x100;
        for (unsigned b = 0; b < 256; ++b) {
            to_cp[b] = stands_for_itself(b) ? b : next++;
            to_byte[to_cp[b]] = static_cast<int16_t>(b);
        }
    }
};

const Tables& tables() {
    static const Tables t;
    return t;
}

}  // namespace

uint32_t code_point_for_byte(uint8_t byte) { return tables().to_cp[byte]; }

std::optional<uint8_t> byte_for_code_point(uint32_t cp) {
    if (cp >= tables().to_byte.size() || tables().to_byte[cp] < 0) return std::nullopt;
    return static_cast<uint8_t>(tables().to_byte[cp]);
}

std::string encode(std::string_view raw) {
    std::string out;
    out.reserve(raw.size() * 2);
    for (char c : raw) utf8::append(out, code_point_for_byte(static_cast<uint8_t>(c)));
    return out;
}

std::string decode(std::string_view spelled) {
    std::string out;
    out.reserve(spelled.size());
    for (uint32_t cp : utf8::decode_lossy(spelled)) {
        if (auto b = byte_for_code_point(cp)) {
            out.push_back(static_cast<char>(*b));
        } else {
            utf8::append(out, cp);
        }
    }
    return out;
}

}  // namespace apr::byte_unicode
