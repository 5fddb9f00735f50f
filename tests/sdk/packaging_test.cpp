// `cpack -G DEB` in the build folder makes one package per part: apr, apr-sdk and one
// apr-backend-<name> per backend built, each backend depending on the ABI apr provides.
#include <catch2/catch.hpp>

#include <apr/backend.h>

#include "sdk/build_tree.hpp"
#include "support/process.hpp"
#include "support/skip.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using apr::test::ProcessResult;
using apr::test::run_process;

namespace {

// The one .deb in `dir` whose file name starts with "<package>_", or "".
fs::path deb_of(const fs::path& dir, const std::string& package) {
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (name.rfind(package + "_", 0) == 0 && e.path().extension() == ".deb") return e.path();
    }
    return {};
}

std::string dpkg_deb() { return apr::test::find_on_path("dpkg-deb"); }

std::string field(const fs::path& deb, const std::string& name) {
    ProcessResult r = run_process({dpkg_deb(), "-f", deb.string(), name});
    return r.exit_code == 0 ? r.out : "";
}

std::string contents(const fs::path& deb) { return run_process({dpkg_deb(), "-c", deb.string()}).out; }

}  // namespace

TEST_CASE("cpack builds one Debian package per part, backends depending on apr's ABI", "[sdk][packaging]") {
    APR_SKIP_TEST_UNLESS(!dpkg_deb().empty(), "dpkg-deb is not on PATH: Debian packages cannot be built here");
    const fs::path out = apr::test::scratch_dir("sdk_cpack_deb");
    ProcessResult cpack = run_process({apr::test::cpack_program(), "-G", "DEB", "--config",
                                       (apr::test::build_dir() / "CPackConfig.cmake").string(), "-B", out.string()},
                                      {}, 600);
    INFO(cpack.out << cpack.err);
    REQUIRE(cpack.exit_code == 0);

    const std::string abi = "apr-abi-" + std::to_string(APR_BACKEND_ABI_VERSION);
    const fs::path apr = deb_of(out, "apr");
    REQUIRE(!apr.empty());
    CHECK(field(apr, "Provides").find(abi) != std::string::npos);
    const std::string apr_files = contents(apr);
    CHECK(apr_files.find("./usr/bin/apr-run") != std::string::npos);
    CHECK(apr_files.find("./usr/bin/apr-make-model") != std::string::npos);
    CHECK(apr_files.find("./usr/share/apr/default-model.gguf") != std::string::npos);
    CHECK(apr_files.find("libapr_backend_") == std::string::npos);  // backends come in their own packages

    const fs::path sdk = deb_of(out, "apr-sdk");
    REQUIRE(!sdk.empty());
    const std::string sdk_files = contents(sdk);
    CHECK(sdk_files.find("./usr/include/apr/backend.h") != std::string::npos);
    CHECK(sdk_files.find("./usr/lib/cmake/AprSDK/AprSDKConfig.cmake") != std::string::npos);
    CHECK(sdk_files.find("./usr/share/doc/apr-sdk/README.md") != std::string::npos);
    CHECK(sdk_files.find("./usr/bin/apr-plugin-check") != std::string::npos);

    std::vector<std::string> backends = {"cpu"};
    if (APR_TEST_WITH_VULKAN) backends.push_back("vulkan");
    if (APR_TEST_WITH_CUDA) backends.push_back("cuda");
    for (const auto& b : backends) {
        INFO("backend " << b);
        const fs::path deb = deb_of(out, "apr-backend-" + b);
        REQUIRE(!deb.empty());
        CHECK(field(deb, "Depends").find(abi) != std::string::npos);
        const std::string files = contents(deb);
        CHECK(files.find("./usr/lib/apr/backends/libapr_backend_" + b + ".so") != std::string::npos);
        CHECK(files.find("./usr/bin/") == std::string::npos);
    }
    size_t debs = 0;
    for (const auto& e : fs::directory_iterator(out)) debs += e.path().extension() == ".deb";
    CHECK(debs == 2 + backends.size());
}
