// The one exception type of the tokenizer unit: a vocabulary that cannot be used (missing or
// malformed metadata, an unknown tokenizer model or pre-tokenizer) or a bad call (a token id
// out of range). what() names the key, the name or the id at fault.
#pragma once

#include <stdexcept>
#include <string>

namespace apr {

class TokenizerError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace apr
