// The plugin search refuses files that someone other than root or this user could have planted
// (registry/plugin_discovery.hpp, plugin_permission_problem), with a `load` rejection naming
// the path and the permission; the project's own build tree never trips it.
#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <unistd.h>

#include "registry/plugin_discovery.hpp"
#include "support/models.hpp"
#include "support/process.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using apr::plugin_permission_problem;

namespace {

const std::string kTag = "[apr-cpu-vs-gpu-output-parity-v1] ";

// A copy of the real cpu plugin in a fresh folder, with the given modes.
fs::path plugin_copy(const std::string& test, fs::perms file_mode, fs::perms dir_mode) {
    const fs::path dir = apr::test::scratch_dir(test) / "backends";
    fs::create_directories(dir);
    const fs::path file = dir / "libapr_backend_cpu.so";
    fs::copy_file(apr::test::backend_dir() / "libapr_backend_cpu.so", file);
    fs::permissions(file, file_mode);
    fs::permissions(dir, dir_mode);
    return file;
}

constexpr fs::perms kRwRR = fs::perms(0644), kRwRwRw = fs::perms(0666), kDir = fs::perms(0755);

}  // namespace

TEST_CASE("plugin permissions: a world-writable plugin file is refused, naming path and mode", "[reliability][permissions]") {
    const fs::path file = plugin_copy("perm_file_o_w", kRwRwRw, kDir);
    CHECK(plugin_permission_problem(file) == "refusing " + file.string() + ": writable by other users (mode 0666)");
    fs::permissions(file, fs::perms(0664));  // group-writable only: accepted (a shared install group)
    CHECK(plugin_permission_problem(file).empty());
    fs::permissions(file, kRwRR);
    CHECK(plugin_permission_problem(file).empty());
}

TEST_CASE("plugin permissions: a world-writable folder without the sticky bit is refused, with it accepted",
          "[reliability][permissions]") {
    const fs::path file = plugin_copy("perm_dir_o_w", kRwRR, fs::perms(0777));
    CHECK(plugin_permission_problem(file) ==
          "refusing " + file.string() + ": its folder " + file.parent_path().string() +
              " is writable by other users without the sticky bit (mode 0777)");
    fs::permissions(file.parent_path(), fs::perms(01777));  // like /tmp: only owners may replace files
    CHECK(plugin_permission_problem(file).empty());
}

TEST_CASE("plugin permissions: a plugin owned by another user is refused", "[reliability][permissions]") {
    const fs::path file = plugin_copy("perm_owner", kRwRR, kDir);
    if (::geteuid() != 0) {
        // Only root can give a file away; as another user, check that our own file passes.
        CHECK(plugin_permission_problem(file).empty());
        return;
    }
    REQUIRE(::chown(file.c_str(), 12345, 12345) == 0);
    CHECK(plugin_permission_problem(file) ==
          fmt::format("refusing {}: owned by uid 12345, neither root nor the current user (uid {})", file.string(),
                      ::geteuid()));
}

TEST_CASE("plugin permissions: apr-run rejects a refused plugin at load and never loads it", "[reliability][permissions]") {
    const fs::path file = plugin_copy("perm_apr_run", kRwRwRw, kDir);
    auto r = apr::test::run_process(
        {(apr::test::bin_dir() / "apr-run").string(), "-m", apr::test::tiny_model().string(), "-p", "Hi", "-n", "2",
         "--plugin-dir", file.parent_path().string(), "--backend", "cpu"},
        {{"APR_PLUGIN_PATH", ""}, {"APR_BACKEND", ""},
         {"XDG_CACHE_HOME", apr::test::scratch_dir("perm_apr_run_cache").string()}});
    INFO(r.err);
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.err, Catch::Contains(kTag + "cpu path rejected, no fallback (forced with --backend): load: refusing " +
                                      file.string() + ": writable by other users (mode 0666)"));
    // --list-backends shows the refusal too, without loading the file.
    auto list = apr::test::run_process({(apr::test::bin_dir() / "apr-run").string(), "--list-backends", "--plugin-dir",
                                        file.parent_path().string()},
                                       {{"APR_PLUGIN_PATH", ""}, {"APR_BACKEND", ""}});
    INFO(list.out);
    CHECK_THAT(list.out, Catch::Contains("writable by other users (mode 0666)"));
}

TEST_CASE("plugin permissions: the project's own plugins and fixtures are never refused", "[reliability][permissions]") {
    size_t checked = 0;
    for (const fs::path& root : {apr::test::backend_dir(), apr::test::fixture_dir()}) {
        for (const auto& entry : fs::recursive_directory_iterator(root)) {
            if (!apr::backend_name_from_filename(entry.path().filename().string())) continue;
            INFO(entry.path());
            CHECK(plugin_permission_problem(entry.path()).empty());
            ++checked;
        }
    }
    CHECK(checked > 10);
}
