// What the SDK tests need to know about the build they test: the build folder, the source
// folder and the cmake/cpack the build was configured with, read from its CMakeCache.txt.
// Header-only: the test build compiles only *_test.cpp files from unit folders.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "support/testdata.hpp"

namespace apr::test {

// The build folder: bin_dir() is <build>/bin.
inline std::filesystem::path build_dir() { return bin_dir().parent_path(); }

// The value of `key` in the build's CMakeCache.txt (e.g. CMAKE_COMMAND), or "" if absent.
inline std::string cmake_cache_value(const std::string& key) {
    std::ifstream in(build_dir() / "CMakeCache.txt");
    if (!in) throw std::runtime_error("no CMakeCache.txt in " + build_dir().string());
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key + ":", 0) != 0) continue;
        const auto eq = line.find('=');
        if (eq != std::string::npos) return line.substr(eq + 1);
    }
    return "";
}

inline std::string cmake_program() { return cmake_cache_value("CMAKE_COMMAND"); }
inline std::string cpack_program() { return cmake_cache_value("CMAKE_CPACK_COMMAND"); }
inline std::filesystem::path source_dir() { return cmake_cache_value("CMAKE_HOME_DIRECTORY"); }

// The full path of `program` found on PATH (run_process does not search PATH), or "".
inline std::string find_on_path(const std::string& program) {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (dir.empty()) continue;
        const std::filesystem::path candidate = std::filesystem::path(dir) / program;
        if (std::filesystem::is_regular_file(candidate)) return candidate.string();
    }
    return "";
}

}  // namespace apr::test
