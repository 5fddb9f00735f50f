// Discovery order, shadowing and file-name rules of the backend registry.
#include <catch2/catch.hpp>

#include <fstream>

#include "registry/plugin_discovery.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using namespace apr;

namespace {
void touch(const fs::path& p) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "not really a plugin";
}
}  // namespace

TEST_CASE("registry: backend names come from libapr_backend_<name>.so", "[registry]") {
    REQUIRE(backend_name_from_filename("libapr_backend_cuda.so") == std::optional<std::string>("cuda"));
    REQUIRE(backend_name_from_filename("libapr_backend_my-gpu_2.so") == std::optional<std::string>("my-gpu_2"));
    REQUIRE_FALSE(backend_name_from_filename("libapr_backend_.so"));
    REQUIRE_FALSE(backend_name_from_filename("libapr_backend_cuda.so.1"));
    REQUIRE_FALSE(backend_name_from_filename("apr_backend_cuda.so"));
    REQUIRE_FALSE(backend_name_from_filename("libapr_backend_a b.so"));
}

TEST_CASE("registry: --plugin-dir, then APR_PLUGIN_PATH, then the install folder - first file per name wins",
          "[registry]") {
    fs::path root = apr::test::scratch_dir("discovery_order");
    touch(root / "d1/libapr_backend_cpu.so");
    touch(root / "d2/libapr_backend_cpu.so");
    touch(root / "d2/libapr_backend_vulkan.so");
    touch(root / "env1/libapr_backend_vulkan.so");
    touch(root / "env2/libapr_backend_cuda.so");
    touch(root / "install/libapr_backend_cuda.so");
    touch(root / "install/libapr_backend_other.so");
    touch(root / "install/not_a_plugin.so");

    PluginSearchPath search;
    search.plugin_dirs = {root / "d1", root / "d2"};
    search.env_plugin_path = (root / "env1").string() + "::" + (root / "env2").string();
    search.install_dir = root / "install";
    auto files = discover_plugins(search);

    std::vector<std::string> seen;
    for (const auto& f : files)
        seen.push_back(f.name + "@" + f.path.parent_path().filename().string() + (f.shadowed ? "(shadowed)" : ""));
    REQUIRE(seen == std::vector<std::string>{"cpu@d1", "cpu@d2(shadowed)", "vulkan@d2", "vulkan@env1(shadowed)",
                                             "cuda@env2", "cuda@install(shadowed)", "other@install"});
    REQUIRE(files[0].origin == "--plugin-dir");
    REQUIRE(files[4].origin == "APR_PLUGIN_PATH");
    REQUIRE(files[6].origin == "install");
    REQUIRE(files[1].shadowed_by == files[0].path);
}

TEST_CASE("registry: the current directory is never searched, not even through an empty APR_PLUGIN_PATH entry",
          "[registry]") {
    fs::path root = apr::test::scratch_dir("discovery_cwd");
    touch(root / "libapr_backend_sneaky.so");
    fs::path old = fs::current_path();
    fs::current_path(root);
    PluginSearchPath search;
    search.env_plugin_path = ":";
    auto files = discover_plugins(search);
    fs::current_path(old);
    REQUIRE(files.empty());
}

TEST_CASE("registry: a folder that does not exist is skipped", "[registry]") {
    PluginSearchPath search;
    search.plugin_dirs = {"/nonexistent/apr/plugins"};
    REQUIRE(discover_plugins(search).empty());
}
