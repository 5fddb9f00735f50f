#include "tokenizer/utf8.hpp"

namespace apr::utf8 {

namespace {

constexpr uint32_t kReplacement = 0xFFFD;

bool is_continuation(uint8_t b) { return (b & 0xC0) == 0x80; }

// Decodes one sequence at text[pos]. Returns its length in bytes, or 0 when the bytes there do
// not form a valid, complete, shortest-form sequence (surrogates and > U+10FFFF are invalid).
size_t decode_one(std::string_view text, size_t pos, uint32_t& cp) {
    const uint8_t b0 = static_cast<uint8_t>(text[pos]);
    if (b0 < 0x80) {
        cp = b0;
        return 1;
    }
    size_t len;
    uint32_t min;
    if ((b0 & 0xE0) == 0xC0) {
        len = 2; cp = b0 & 0x1F; min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
        len = 3; cp = b0 & 0x0F; min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
        len = 4; cp = b0 & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (pos + len > text.size()) return 0;
    for (size_t i = 1; i < len; ++i) {
        const uint8_t b = static_cast<uint8_t>(text[pos + i]);
        if (!is_continuation(b)) return 0;
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

}  // namespace

size_t sequence_length_from_lead(uint8_t lead) {
    // By the high nibble: 0-7 ASCII, 8-B continuation (treated as a unit of 1), C-D two bytes,
    // E three, F four.
    static constexpr size_t kByHighNibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kByHighNibble[lead >> 4];
}

std::vector<uint32_t> decode_lossy(std::string_view text) {
    std::vector<uint32_t> out;
    out.reserve(text.size());
    size_t pos = 0;
    while (pos < text.size()) {
        uint32_t cp = 0;
        const size_t len = decode_one(text, pos, cp);
        if (len == 0) {
            out.push_back(kReplacement);
            ++pos;
        } else {
            out.push_back(cp);
            pos += len;
        }
    }
    return out;
}

void append(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

std::string sanitize(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    size_t pos = 0;
    while (pos < text.size()) {
        uint32_t cp = 0;
        const size_t len = decode_one(text, pos, cp);
        if (len == 0) {
            append(out, kReplacement);
            ++pos;
        } else {
            out.append(text.substr(pos, len));
            pos += len;
        }
    }
    return out;
}

size_t releasable_prefix(std::string_view bytes) {
    // Only the last (up to 3) bytes can belong to an incomplete sequence: find the last lead
    // byte among them and check whether it announces more bytes than are present.
    const size_t n = bytes.size();
    for (size_t back = 1; back <= 3 && back <= n; ++back) {
        const uint8_t b = static_cast<uint8_t>(bytes[n - back]);
        if (is_continuation(b)) continue;
        size_t need = 0;
        if ((b & 0xE0) == 0xC0) need = 2;
        else if ((b & 0xF0) == 0xE0) need = 3;
        else if ((b & 0xF8) == 0xF0) need = 4;
        if (need > back) return n - back;  // a lead byte still waiting for continuation bytes
        return n;
    }
    return n;
}

}  // namespace apr::utf8
