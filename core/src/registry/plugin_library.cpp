#include "registry/plugin_library.hpp"

#include <cmath>
#include <boost/dll/shared_library.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <type_traits>

#include "log/log.hpp"

namespace apr {

using contract::Stage;

struct PluginLibrary::Impl {
    boost::dll::shared_library library;
};

namespace {

std::string status_name(apr_status s) {
    switch (s) {
        case APR_OK: return "APR_OK";
        case APR_ERR_NO_DEVICE: return "APR_ERR_NO_DEVICE";
        case APR_ERR_UNSUPPORTED: return "APR_ERR_UNSUPPORTED";
        case APR_ERR_OUT_OF_MEMORY: return "APR_ERR_OUT_OF_MEMORY";
        case APR_ERR_INVALID_ARGUMENT: return "APR_ERR_INVALID_ARGUMENT";
        case APR_ERR_DEVICE_LOST: return "APR_ERR_DEVICE_LOST";
        case APR_ERR_INTERNAL: return "APR_ERR_INTERNAL";
    }
    return "status " + std::to_string(static_cast<int>(s));
}

// Calls into a plugin. A C++ exception must never cross the ABI; if a plugin lets one out
// anyway, it is caught here and becomes a failure of that call.
template <typename F>
apr_status guarded(F&& call, std::string& escaped) {
    try {
        return call();
    } catch (const std::exception& e) {
        escaped = std::string("a C++ exception crossed the plugin ABI: ") + e.what();
    } catch (...) {
        escaped = "a C++ exception crossed the plugin ABI";
    }
    return APR_ERR_INTERNAL;
}

}  // namespace

PluginLibrary::~PluginLibrary() = default;

void PluginLibrary::reject(Stage stage, const std::string& reason) const {
    throw RejectionError(contract::Rejection{name_, stage, reason});
}

std::shared_ptr<PluginLibrary> PluginLibrary::load(const PluginFile& file) {
    std::shared_ptr<PluginLibrary> lib(new PluginLibrary());
    lib->name_ = file.name;
    lib->path_ = file.path;
    lib->impl_ = std::make_unique<Impl>();
    namespace mode = boost::dll::load_mode;
    try {
        lib->impl_->library.load(file.path, mode::rtld_now | mode::rtld_local);
    } catch (const std::exception& e) {
        lib->reject(Stage::load, file.path.string() + ": " + e.what());
    }
    // Boost's message for a failed dlopen is generic; dlerror's text is in it when available.
    auto& so = lib->impl_->library;
    if (!so.has(APR_BACKEND_DESCRIPTOR_SYMBOL))
        lib->reject(Stage::abi, "no exported symbol '" APR_BACKEND_DESCRIPTOR_SYMBOL "' in " + file.path.string());
    const auto& desc = so.get<const apr_backend_desc>(APR_BACKEND_DESCRIPTOR_SYMBOL);
    if (desc.abi_version != APR_BACKEND_ABI_VERSION)
        lib->reject(Stage::abi, "ABI version " + std::to_string(desc.abi_version) + ", this core speaks " +
                                    std::to_string(APR_BACKEND_ABI_VERSION));
    // Appended fields (measure_copy_rate, ...) are optional: a plugin built against the first
    // layout is accepted, and BackendSession reads a later field only where struct_size covers it.
    if (desc.struct_size < APR_BACKEND_DESC_MIN_SIZE)
        lib->reject(Stage::abi, "descriptor struct_size " + std::to_string(desc.struct_size) + " < " +
                                    std::to_string(APR_BACKEND_DESC_MIN_SIZE) + " bytes this core needs");
    if (!desc.name || !desc.display_name || !desc.plugin_version)
        lib->reject(Stage::abi, "descriptor has a null name, display_name or plugin_version");
    if (!desc.probe || !desc.open || !desc.close || !desc.last_error)
        lib->reject(Stage::abi, "descriptor has a null function pointer (probe, open, close, last_error)");
    if (file.name != desc.name)
        lib->reject(Stage::abi, "descriptor name '" + std::string(desc.name) + "' differs from the file's backend name '" +
                                    file.name + "'");
    if (!so.has(APR_BACKEND_STEP_SYMBOL))
        lib->reject(Stage::abi, "no exported symbol '" APR_BACKEND_STEP_SYMBOL "' in " + file.path.string());
    lib->desc_ = &desc;
    lib->step_ = &so.get<std::remove_pointer_t<apr_backend_step_fn>>(APR_BACKEND_STEP_SYMBOL);
    log::get().debug("{}: loaded {} ({} {}, ABI {}, priority {})", file.name, file.path.string(), desc.display_name,
                     desc.plugin_version, desc.abi_version, desc.priority);
    return lib;
}

std::string PluginLibrary::plugin_error() const {
    std::string escaped;
    const char* text = nullptr;
    guarded(
        [&] {
            text = desc_->last_error();
            return APR_OK;
        },
        escaped);
    if (!escaped.empty()) return escaped;
    return text && *text ? std::string(text) : std::string("(the plugin gave no reason)");
}

apr_device_info PluginLibrary::probe() {
    apr_device_info info{};
    info.struct_size = sizeof info;
    std::string escaped;
    apr_status s = guarded([&] { return desc_->probe(&info); }, escaped);
    if (s != APR_OK) reject(Stage::probe, escaped.empty() ? status_name(s) + ": " + plugin_error() : escaped);
    info.description[sizeof info.description - 1] = '\0';
    info.driver[sizeof info.driver - 1] = '\0';
    if (info.description[0] == '\0') std::snprintf(info.description, sizeof info.description, "%s", desc_->display_name);
    return info;
}

std::unique_ptr<BackendSession> PluginLibrary::open(const apr_model_view& model, const apr_session_config& config) {
    apr_session* session = nullptr;
    std::string escaped;
    apr_status s = guarded([&] { return desc_->open(&model, &config, &session); }, escaped);
    if (s != APR_OK) reject(Stage::open, escaped.empty() ? status_name(s) + ": " + plugin_error() : escaped);
    if (!session) reject(Stage::open, "open returned APR_OK but no session");
    // The session holds a reference to this library, so the code it runs stays mapped.
    return std::unique_ptr<BackendSession>(new BackendSession(shared_from_this(), session, &model));
}

}  // namespace apr

namespace apr {

BackendSession::~BackendSession() {
    std::string escaped;
    apr_session* s = session_;
    guarded(
        [&] {
            library_->desc_->close(s);
            return APR_OK;
        },
        escaped);
    if (!escaped.empty()) log::get().debug("{}: close: {}", library_->name(), escaped);
}

void BackendSession::step(const int32_t* tokens, uint32_t n_tokens, uint32_t pos, bool all_logits, float* logits) {
    std::string escaped;
    uint32_t flags = all_logits ? APR_STEP_LOGITS_ALL : 0u;
    apr_status s = guarded([&] { return library_->step_(session_, tokens, n_tokens, pos, flags, logits); }, escaped);
    if (s != APR_OK)
        library_->reject(Stage::step, escaped.empty() ? status_name(s) + " at position " + std::to_string(pos) + ": " +
                                                            library_->plugin_error()
                                                      : escaped);
}

std::optional<double> BackendSession::measure_copy_rate() {
    const apr_backend_desc& desc = *library_->desc_;
    if (!APR_BACKEND_DESC_HAS(&desc, measure_copy_rate) || !desc.measure_copy_rate) return std::nullopt;
    double rate = 0.0;
    std::string escaped;
    const apr_status s = guarded([&] { return desc.measure_copy_rate(session_, &rate); }, escaped);
    if (s != APR_OK) {
        log::get().warn("{}: measure_copy_rate failed: {}", library_->name(),
                        escaped.empty() ? status_name(s) + ": " + library_->plugin_error() : escaped);
        return std::nullopt;
    }
    if (!(rate > 0.0) || !std::isfinite(rate)) {
        log::get().warn("{}: measure_copy_rate returned {} bytes/s; ignored", library_->name(), rate);
        return std::nullopt;
    }
    return rate;
}

}  // namespace apr
