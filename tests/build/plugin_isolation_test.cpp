// A plugin is what a third party could build from the SDK alone. The build gives plugins only
// sdk/include (apr_add_backend) and links them with --no-undefined; these tests check the
// sources and the built files too, so a relative include or a core symbol cannot slip in.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <sstream>

#include "support/process.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;

TEST_CASE("plugins include only the SDK's headers, their own files and system headers", "[build]") {
    const fs::path source = APR_TEST_SOURCE_DIR;
    const std::regex include(R"(^\s*#\s*include\s*([<"])([^>"]+)[>"])");
    size_t files = 0;
    for (const auto& entry : fs::recursive_directory_iterator(source / "plugins")) {
        const std::string ext = entry.path().extension().string();
        if (!(ext == ".cpp" || ext == ".hpp" || ext == ".h" || ext == ".cu" || ext == ".cuh" || ext == ".glsl" ||
              ext == ".comp"))
            continue;
        ++files;
        std::ifstream in(entry.path());
        std::string line;
        while (std::getline(in, line)) {
            std::smatch m;
            if (!std::regex_search(line, m, include)) continue;
            const std::string path = m[2];
            INFO(entry.path().string() << ": " << line);
            CHECK(path.find("core/") == std::string::npos);
            CHECK(path.find("../") == std::string::npos);
            if (m[1] == "\"") {
                // A quoted include names a file of the same plugin.
                bool own = false;
                for (fs::path dir = entry.path().parent_path(); dir.string().size() >= (source / "plugins").string().size();
                     dir = dir.parent_path()) {
                    own = own || fs::exists(dir / path);
                    if (dir == source / "plugins") break;
                }
                // Generated files (embedded shaders) live in the build tree.
                CHECK((own || path.find("generated") != std::string::npos || path.find("spv") != std::string::npos));
            }
        }
    }
    REQUIRE(files > 0);
}

TEST_CASE("built plugins export exactly the two ABI symbols and need no core symbol", "[build]") {
    size_t plugins = 0;
    for (const auto& entry : fs::directory_iterator(apr::test::backend_dir())) {
        if (entry.path().extension() != ".so") continue;
        ++plugins;
        auto r = apr::test::run_process({"/usr/bin/nm", "-D", "--defined-only", entry.path().string()});
        REQUIRE(r.exit_code == 0);
        std::vector<std::string> exported;
        for (const auto& l : apr::test::lines_of(r.out)) {
            std::istringstream fields(l);
            std::string addr, kind, name;
            fields >> addr >> kind >> name;
            // Data and text symbols only (ignore _init/_fini and versioning entries).
            if ((kind == "T" || kind == "D" || kind == "R" || kind == "B") && name.rfind("_", 0) != 0)
                exported.push_back(name);
        }
        INFO(entry.path().string() << ": " << r.out);
        std::sort(exported.begin(), exported.end());
        CHECK(exported == std::vector<std::string>{"apr_backend_descriptor", "apr_backend_step"});
        auto undefined = apr::test::run_process({"/usr/bin/nm", "-D", "--undefined-only", entry.path().string()});
        for (const auto& l : apr::test::lines_of(undefined.out)) CHECK(l.find("apr::") == std::string::npos);
    }
    REQUIRE(plugins >= 1);
}
