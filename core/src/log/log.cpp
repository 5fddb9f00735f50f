#include "log/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

namespace apr::log {

spdlog::logger& get() {
    static std::shared_ptr<spdlog::logger> logger = [] {
        auto l = std::make_shared<spdlog::logger>("apr", std::make_shared<spdlog::sinks::stderr_sink_mt>());
        l->set_pattern("%v");
        l->set_level(spdlog::level::info);
        l->flush_on(spdlog::level::trace);
        return l;
    }();
    return *logger;
}

void set_verbose(bool verbose) { get().set_level(verbose ? spdlog::level::debug : spdlog::level::info); }

}  // namespace apr::log
