// GPT-2's byte-to-unicode mapping: byte-level BPE vocabularies spell every byte as one
// printable code point, so that token texts never contain raw control bytes or spaces.
// Printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) stand for themselves; the
// other 68 bytes, in increasing order, take U+0100, U+0101, ... (so ' ' is 'Ġ' U+0120 and '\n'
// is 'Ċ' U+010A).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace apr::byte_unicode {

// The code point that spells `byte`.
uint32_t code_point_for_byte(uint8_t byte);

// The byte that `cp` spells, or nullopt when `cp` is not one of the 256 spellings.
std::optional<uint8_t> byte_for_code_point(uint32_t cp);

// Every byte of `raw` replaced by the UTF-8 of its spelling.
std::string encode(std::string_view raw);

// The inverse of encode: each code point of `spelled` turned back into its byte. A code point
// that is not a byte spelling (a vocabulary can hold such texts) is kept as its own UTF-8, so
// nothing is silently lost.
std::string decode(std::string_view spelled);

}  // namespace apr::byte_unicode
