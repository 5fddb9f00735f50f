// The ABI surface of libapr_backend_cpu.so: the descriptor and the step function. Every entry
// point catches every exception and turns it into a status plus last_error text; nothing C++
// crosses the boundary.
#include <apr/backend.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "cpu_features.hpp"
#include "plugin_error.hpp"
#include "session.hpp"

struct apr_session {
    apr_cpu::Session impl;
    apr_session(const apr_model_view& view, const apr_session_config& config) : impl(view, config) {}
};

namespace {

thread_local std::string t_last_error;

apr_status fail(apr_status status, const std::string& message) {
    t_last_error = message;
    return status;
}

// Runs body, mapping every exception to a status and last_error text. A successful call leaves
// last_error as it was: it always describes the last call that failed on this thread.
template <class Body>
apr_status guarded(const char* what, Body&& body) {
    try {
        body();
        return APR_OK;
    } catch (const apr_cpu::PluginError& e) {
        return fail(e.status(), std::string(what) + ": " + e.what());
    } catch (const std::bad_alloc&) {
        return fail(APR_ERR_OUT_OF_MEMORY, std::string(what) + ": out of host memory");
    } catch (const std::exception& e) {
        return fail(APR_ERR_INTERNAL, std::string(what) + ": " + e.what());
    } catch (...) {
        return fail(APR_ERR_INTERNAL, std::string(what) + ": unknown exception");
    }
}

void copy_text(char* dst, size_t cap, const std::string& text) {
    if (cap == 0) return;
    const size_t n = std::min(cap - 1, text.size());
    std::memcpy(dst, text.data(), n);
    dst[n] = '\0';
}

apr_status cpu_probe(apr_device_info* info) {
    return guarded("probe", [&] {
        if (!info) throw apr_cpu::PluginError(APR_ERR_INVALID_ARGUMENT, "info is NULL");
        const apr_cpu::CpuFeatures& f = apr_cpu::cpu_features();
        const apr_cpu::KernelTable& k = [] () -> const apr_cpu::KernelTable& {
            try {
                return apr_cpu::select_kernels();
            } catch (const std::runtime_error& e) {
                throw apr_cpu::PluginError(APR_ERR_NO_DEVICE, e.what());
            }
        }();
#if defined(__x86_64__)
        const std::string arch = "x86-64";
#else
        const std::string arch = "cpu";
#endif
        // No thread count: the probe cannot know the session's (apr_session_config::n_threads);
        // the core adds the count each session was opened with to the text it shows.
        const std::string description = arch + " " + f.describe();
        const std::string driver = std::string("apr-cpu 0.1.0 (") + k.isa + " kernels)";
        uint64_t memory = 0;
        const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        if (pages > 0 && page > 0) memory = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
        // Write only the fields the caller's struct_size covers.
        const size_t size = info->struct_size;
        if (size >= offsetof(apr_device_info, description) + sizeof(info->description))
            copy_text(info->description, sizeof(info->description), description);
        if (size >= offsetof(apr_device_info, driver) + sizeof(info->driver))
            copy_text(info->driver, sizeof(info->driver), driver);
        if (size >= offsetof(apr_device_info, memory_bytes) + sizeof(info->memory_bytes)) info->memory_bytes = memory;
    });
}

apr_status cpu_open(const apr_model_view* model, const apr_session_config* config, apr_session** out) {
    if (out) *out = nullptr;
    return guarded("open", [&] {
        if (!model || !config || !out) throw apr_cpu::PluginError(APR_ERR_INVALID_ARGUMENT, "model, config and out must not be NULL");
        *out = new apr_session(*model, *config);
    });
}

// Destructors are noexcept: stopping the workers and freeing the cache cannot throw across.
void cpu_close(apr_session* session) { delete session; }

const char* cpu_last_error(void) { return t_last_error.c_str(); }

}  // namespace

extern "C" {

const apr_backend_desc apr_backend_descriptor = {
    APR_BACKEND_ABI_VERSION,
    sizeof(apr_backend_desc),
    "cpu",
    "apr CPU backend",
    "0.1.0",
    100,
    APR_BACKEND_FLAG_CPU,
    cpu_probe,
    cpu_open,
    cpu_close,
    cpu_last_error,
};

APR_BACKEND_EXPORT apr_status apr_backend_step(apr_session* session, const int32_t* tokens, uint32_t n_tokens, uint32_t pos,
                                               uint32_t flags, float* logits) {
    return guarded("step", [&] {
        if (!session) throw apr_cpu::PluginError(APR_ERR_INVALID_ARGUMENT, "session is NULL");
        session->impl.step(tokens, n_tokens, pos, (flags & APR_STEP_LOGITS_ALL) != 0, logits);
    });
}

}  // extern "C"
