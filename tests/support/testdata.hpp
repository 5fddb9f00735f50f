// Where the tests find the project's outputs and the external reference data.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace apr::test {

// ../shared/testdata beside the checkout (external data: never copied into the repo).
inline std::filesystem::path testdata_dir() { return APR_TEST_TESTDATA_DIR; }
inline bool have_testdata() { return std::filesystem::is_directory(testdata_dir()); }
inline std::string no_testdata_reason() {
    return "external test data not found at " + testdata_dir().string() + " (../shared/testdata)";
}

inline std::filesystem::path bin_dir() { return APR_TEST_BIN_DIR; }
// The build tree's backends folder, or APR_TEST_BACKEND_DIR when set: a copied test binary
// run on another machine (the GPU machine) names the copied plugins' folder there.
inline std::filesystem::path backend_dir() {
    const char* dir = std::getenv("APR_TEST_BACKEND_DIR");
    return dir && *dir ? std::filesystem::path(dir) : std::filesystem::path(APR_TEST_BACKEND_DIR);
}
inline std::filesystem::path fixture_dir() { return APR_TEST_FIXTURE_DIR; }

// A scratch folder for one test, created empty.
std::filesystem::path scratch_dir(const std::string& test_name);

}  // namespace apr::test
