// Logging: everything apr says on stderr goes through one spdlog logger. Contract lines (see
// contract/parity_contract.hpp) are logged at info and always shown; detail is at debug and
// shown with --verbose only.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>

namespace apr::log {

// The process-wide logger ("apr"), writing bare lines to stderr. Created on first use.
spdlog::logger& get();
// --verbose: show debug detail too.
void set_verbose(bool verbose);

}  // namespace apr::log
