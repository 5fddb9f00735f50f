// The one exception type the plugin throws on purpose: a status for the ABI and its message.
// The entry points (cpu_backend.cpp) turn it, and any other exception, into a return status.
#pragma once

#include <apr/backend.h>

#include <stdexcept>
#include <string>

namespace apr_cpu {

class PluginError : public std::runtime_error {
public:
    PluginError(apr_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
    apr_status status() const { return status_; }

private:
    apr_status status_;
};

}  // namespace apr_cpu
