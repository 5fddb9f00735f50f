// Where apr's files are, relative to the running executable, so that the build tree and any
// install prefix work the same way: <bin>/../lib/apr/backends for plugins and
// <bin>/../share/apr for data such as the default model.
#pragma once

#include <filesystem>

namespace apr {

// The folder holding the running executable (/proc/self/exe); empty if it cannot be read.
std::filesystem::path executable_dir();
// <exe dir>/../lib/apr/backends (empty if the executable's folder is unknown).
std::filesystem::path installed_backend_dir();
// <exe dir>/../share/apr/default-model.gguf
std::filesystem::path default_model_path();

}  // namespace apr
