#include "install/install_layout.hpp"

#include <system_error>

namespace apr {

namespace fs = std::filesystem;

fs::path executable_dir() {
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return {};
    return exe.parent_path();
}

fs::path installed_backend_dir() {
    fs::path dir = executable_dir();
    return dir.empty() ? dir : (dir / APR_BACKEND_DIR_FROM_BIN).lexically_normal();
}

fs::path default_model_path() {
    fs::path dir = executable_dir();
    return dir.empty() ? dir : (dir / APR_DATA_DIR_FROM_BIN / "default-model.gguf").lexically_normal();
}

}  // namespace apr
