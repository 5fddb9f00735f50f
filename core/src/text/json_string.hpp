// Writing JSON by hand (apr-run --list-backends --json, apr-bench -o json): a string as a
// quoted, escaped JSON string literal.
#pragma once

#include <string>

namespace apr {

std::string json_string(const std::string& s);

}  // namespace apr
