// UTF-8 helpers shared by the tokenizers and the detokenizers.
//
// Tokenizer input is arbitrary bytes, so nothing here throws on bad UTF-8: the helpers either
// measure byte runs the way llama.cpp does (by the lead byte alone) or replace what cannot be
// decoded with U+FFFD, which is also what llama.cpp's BPE path does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace apr::utf8 {

// The length a sequence claims from its lead byte alone (1 for ASCII, for stray continuation
// bytes and for invalid lead bytes; 2..4 otherwise). This is how the SPM and BPE mergers split
// text into symbols.
size_t sequence_length_from_lead(uint8_t lead);

// Decodes `text` to code points; every byte that does not start a valid, complete, shortest-form
// sequence becomes U+FFFD and decoding resumes at the next byte.
std::vector<uint32_t> decode_lossy(std::string_view text);

// Appends the UTF-8 encoding of `cp` (which must be <= 0x10FFFF) to `out`.
void append(std::string& out, uint32_t cp);

// `text` with every undecodable byte replaced by U+FFFD (identity on valid UTF-8).
std::string sanitize(std::string_view text);

// How many leading bytes of `bytes` can be released to a consumer as text: everything except a
// trailing, still-incomplete multi-byte sequence (a valid lead byte followed by fewer
// continuation bytes than it announces). Invalid bytes are not held back: they can never
// complete, so waiting for more input would not help.
size_t releasable_prefix(std::string_view bytes);

}  // namespace apr::utf8
