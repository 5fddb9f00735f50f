// The installed SDK, as a backend author and an operator meet it: `cmake --install` into a
// scratch prefix, the example backend configured and built out of tree against that prefix
// alone, apr-run from the prefix serving with it; and a backend's files removed from the
// prefix, after which apr-run falls back and says so.
#include <catch2/catch.hpp>

#include "sdk/build_tree.hpp"
#include "support/models.hpp"
#include "support/process.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using apr::test::ProcessResult;
using apr::test::run_process;

namespace {

const std::string kTag = "[apr-cpu-vs-gpu-output-parity-v1] ";

std::string output_of(const ProcessResult& r) { return r.out + r.err; }

// Installs the build into `prefix` (every component).
void install_into(const fs::path& prefix) {
    ProcessResult r = run_process({apr::test::cmake_program(), "--install", apr::test::build_dir().string(), "--prefix",
                                   prefix.string()});
    INFO(output_of(r));
    REQUIRE(r.exit_code == 0);
}

// Configures and builds sdk/examples/minimal in `build` against `prefix` only.
fs::path build_example(const fs::path& prefix, const fs::path& build) {
    const fs::path source = apr::test::source_dir() / "sdk" / "examples" / "minimal";
    // A clean environment for find_package: only the prefix, never the source or build tree.
    const std::map<std::string, std::string> env = {{"CMAKE_PREFIX_PATH", ""}, {"AprSDK_DIR", ""}};
    ProcessResult configure = run_process({apr::test::cmake_program(), "-S", source.string(), "-B", build.string(),
                                           "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_PREFIX_PATH=" + prefix.string(),
                                           "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF"},
                                          env);
    INFO(output_of(configure));
    REQUIRE(configure.exit_code == 0);
    // It found the SDK in the prefix, not anywhere else.
    ProcessResult cache = run_process({apr::test::cmake_program(), "-LA", "-N", build.string()});
    REQUIRE(cache.out.find("AprSDK_DIR:PATH=" + (prefix / "lib" / "cmake" / "AprSDK").string()) != std::string::npos);
    ProcessResult compile = run_process({apr::test::cmake_program(), "--build", build.string(), "-j", "2"}, env);
    INFO(output_of(compile));
    REQUIRE(compile.exit_code == 0);
    const fs::path plugin = build / "libapr_backend_minimal.so";
    REQUIRE(fs::is_regular_file(plugin));
    return plugin;
}

std::map<std::string, std::string> clean_env(const std::string& test) {
    return {{"XDG_CACHE_HOME", apr::test::scratch_dir(test + "_cache").string()},
            {"APR_PLUGIN_PATH", ""},
            {"APR_BACKEND", ""},
            {"APR_SKIP_PARITY_GATE", ""}};
}

}  // namespace

TEST_CASE("the example backend builds out of tree against the installed SDK and apr-run serves with it",
          "[sdk][install]") {
    const fs::path work = apr::test::scratch_dir("sdk_example_out_of_tree");
    const fs::path prefix = work / "prefix";
    install_into(prefix);
    for (const char* file : {"include/apr/backend.h", "lib/cmake/AprSDK/AprSDKConfig.cmake",
                             "lib/cmake/AprSDK/AprSDKConfigVersion.cmake", "lib/cmake/AprSDK/AprSDKTargets.cmake",
                             "lib/cmake/AprSDK/AprBackend.cmake", "share/doc/apr-sdk/README.md",
                             "share/doc/apr-sdk/examples/minimal/minimal_backend.cpp", "bin/apr-run",
                             "bin/apr-plugin-check", "lib/apr/backends/libapr_backend_cpu.so"}) {
        INFO(file);
        CHECK(fs::exists(prefix / file));
    }

    const fs::path plugin = build_example(prefix, work / "example-build");
    ProcessResult served = run_process({(prefix / "bin" / "apr-run").string(), "--plugin-dir", plugin.parent_path().string(),
                                        "--backend", "minimal", "-m", apr::test::tiny_model().string(), "-p", "Hello",
                                        "-n", "4", "--temp", "0"},
                                       clean_env("sdk_example_out_of_tree"));
    INFO(output_of(served));
    CHECK(served.exit_code == 0);
    const auto lines = apr::test::lines_of(served.err);
    bool backend_line = false;
    for (const auto& l : lines)
        if (l.rfind("Backend: minimal (host CPU, portable scalar C++, 1 thread) — parity cos=", 0) == 0 &&
            l.find(" top1 11/11, gate ") != std::string::npos)
            backend_line = true;
    CHECK(backend_line);
    CHECK(served.err.find(kTag) == std::string::npos);

    // The conformance kit, as installed, passes it.
    ProcessResult kit = run_process({(prefix / "bin" / "apr-plugin-check").string(), plugin.string()});
    INFO(kit.out << kit.err);
    CHECK(kit.exit_code == 0);
    CHECK(kit.out.find("14 checks: 14 passed, 0 failed, 0 skipped") != std::string::npos);
}

TEST_CASE("installing and removing a backend's files is all it takes for apr-run to use it or fall back",
          "[sdk][install]") {
    const fs::path work = apr::test::scratch_dir("sdk_backend_removed");
    const fs::path prefix = work / "prefix";
    install_into(prefix);
    const fs::path apr_run = prefix / "bin" / "apr-run";
    const auto env = clean_env("sdk_backend_removed");

    // A third-party backend installed into apr's prefix: found with no flag at all.
    const fs::path example_build = work / "example-build";
    build_example(prefix, example_build);
    ProcessResult add = run_process({apr::test::cmake_program(), "--install", example_build.string(), "--prefix",
                                     prefix.string()});
    INFO(output_of(add));
    REQUIRE(add.exit_code == 0);
    const fs::path backends = prefix / "lib" / "apr" / "backends";
    REQUIRE(fs::is_regular_file(backends / "libapr_backend_minimal.so"));

    const std::vector<std::string> run = {apr_run.string(), "--backend", "cpu,minimal", "-m",
                                          apr::test::tiny_model().string(), "-p", "Hello", "-n", "2", "--temp", "0"};
    ProcessResult before = run_process(run, env);
    INFO(output_of(before));
    CHECK(before.exit_code == 0);
    CHECK(before.err.find("Backend: cpu (") != std::string::npos);

    // Remove the cpu backend's files, as `apt remove apr-backend-cpu` does.
    REQUIRE(fs::remove(backends / "libapr_backend_cpu.so"));
    ProcessResult after = run_process(run, env);
    INFO(output_of(after));
    CHECK(after.exit_code == 0);
    CHECK(after.err.find(kTag + "cpu path rejected, attempting fallback: load: ") != std::string::npos);
    CHECK(after.err.find("Backend: minimal (") != std::string::npos);

    // --list-backends from the prefix shows what is there and nothing of what is gone.
    ProcessResult list = run_process({apr_run.string(), "--list-backends", "--json"}, env);
    INFO(output_of(list));
    CHECK(list.exit_code == 0);
    CHECK(list.out.find("libapr_backend_minimal.so") != std::string::npos);
    CHECK(list.out.find("libapr_backend_cpu.so") == std::string::npos);
}
