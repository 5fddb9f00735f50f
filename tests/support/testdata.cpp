#include "support/testdata.hpp"

namespace apr::test {

std::filesystem::path scratch_dir(const std::string& test_name) {
    std::filesystem::path dir = std::filesystem::path(APR_TEST_WORK_DIR) / test_name;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

}  // namespace apr::test
