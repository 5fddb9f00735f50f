// End to end through the real apr-run: discovery, ordering, every fixture's tagged rejection
// line, the next backend serving, forced backends, --no-gpu, --list-backends.
#include <catch2/catch.hpp>

#include <fstream>

#include "support/models.hpp"
#include "support/process.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using apr::test::ProcessResult;
using apr::test::run_process;

namespace {

const std::string kTag = "[apr-cpu-vs-gpu-output-parity-v1] ";

std::string apr_run() { return (apr::test::bin_dir() / "apr-run").string(); }
std::string fixture_dir(const std::string& fault) { return (apr::test::fixture_dir() / fault).string(); }

// A private parity cache per test, so that results never depend on earlier runs.
std::map<std::string, std::string> clean_env(const std::string& test) {
    return {{"XDG_CACHE_HOME", apr::test::scratch_dir(test + "_cache").string()},
            {"APR_PLUGIN_PATH", ""},
            {"APR_BACKEND", ""},
            {"APR_SKIP_PARITY_GATE", ""}};
}

// apr-run on the tiny model, greedy, 4 tokens, with `extra` arguments.
ProcessResult run_with(const std::vector<std::string>& extra_args, const std::string& test,
                       std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv = {apr_run(), "-m", apr::test::tiny_model().string(), "-p", "Hello world", "-n", "4",
                                     "--temp", "0"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    auto merged = clean_env(test);
    for (auto& [k, v] : env) merged[k] = v;
    return run_process(argv, merged);
}

bool has_line(const std::string& text, const std::string& line) {
    for (const auto& l : apr::test::lines_of(text))
        if (l == line) return true;
    return false;
}

bool has_line_starting(const std::string& text, const std::string& prefix) {
    for (const auto& l : apr::test::lines_of(text))
        if (l.rfind(prefix, 0) == 0) return true;
    return false;
}

}  // namespace

TEST_CASE("apr-run: each broken fixture is rejected with its exact tagged line and the cpu backend serves",
          "[cli][fixtures]") {
    struct Case {
        const char* fault;
        std::string line;  // after the tag and "<fault> path rejected, attempting fallback: "
    };
    const std::vector<Case> cases = {
        {"no_descriptor", "abi: no exported symbol 'apr_backend_descriptor' in "},
        {"no_step", "abi: no exported symbol 'apr_backend_step' in "},
        {"unresolved", "load: "},
        {"wrong_abi_version", "abi: ABI version 42, this core speaks 1"},
        {"struct_too_small", "abi: descriptor struct_size 40 < " + std::to_string(APR_BACKEND_DESC_MIN_SIZE) +
                                 " bytes this core needs"},
        {"name_mismatch", "abi: descriptor name 'someone_else' differs from the file's backend name 'name_mismatch'"},
        {"probe_no_device", "probe: APR_ERR_NO_DEVICE: fixture: no device here (this fixture never finds one)"},
        {"open_refuses", "open: APR_ERR_UNSUPPORTED: fixture: this model is refused on purpose"},
        {"throws", "open: a C++ exception crossed the plugin ABI: fixture: thrown from open"},
        {"step_fails",
         "step: APR_ERR_DEVICE_LOST at position 0: fixture: step fails on purpose at position 0 (during the parity gate)"},
    };
    for (const auto& c : cases) {
        INFO("fixture " << c.fault);
        // The fixture, then the real cpu backend: exactly one rejection, then cpu serves.
        auto r = run_with({"--plugin-dir", fixture_dir(c.fault), "--backend", std::string(c.fault) + ",cpu"},
                          std::string("fixture_") + c.fault);
        INFO("stderr:\n" << r.err);
        CHECK(r.exit_code == 0);
        const std::string expected = kTag + c.fault + " path rejected, attempting fallback: " + c.line;
        CHECK(has_line_starting(r.err, expected));
        // Exactly one tagged line: the fixture's. Then the real cpu backend serves.
        size_t tagged = 0;
        for (const auto& l : apr::test::lines_of(r.err)) tagged += l.rfind(kTag, 0) == 0;
        CHECK(tagged == 1);
        CHECK(has_line_starting(r.err, "Backend: cpu ("));
        CHECK_FALSE(r.out.empty());
    }
}

TEST_CASE("apr-run: an unresolved dependency is a load rejection quoting the dynamic loader", "[cli][fixtures]") {
    auto r = run_with({"--plugin-dir", fixture_dir("unresolved"), "--backend", "unresolved,cpu"},
                      "fixture_unresolved_reason");
    REQUIRE(has_line_starting(r.err, kTag + "unresolved path rejected, attempting fallback: load: "));
    REQUIRE_THAT(r.err, Catch::Contains("apr_fixture_symbol_that_does_not_exist"));
}

TEST_CASE("apr-run: a step that fails mid-generation fails over to the next backend", "[cli][fixtures]") {
    auto r = run_with({"--plugin-dir", fixture_dir("step_fails"), "--backend", "step_fails,cpu", "--skip-parity-gate"},
                      "failover_step");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(has_line(r.err, "override: parity gate skipped for step_fails"));
    REQUIRE(has_line(r.err, kTag + "step_fails path rejected, attempting fallback: step: APR_ERR_DEVICE_LOST at "
                                   "position 0: fixture: step fails on purpose at position 0"));
    REQUIRE(has_line(r.err, "override: parity gate skipped for cpu"));
    REQUIRE(has_line_starting(r.err, "Backend: cpu ("));
    REQUIRE_FALSE(r.out.empty());
}

TEST_CASE("apr-run: a single forced backend that fails is an error exit, never a fallback", "[cli]") {
    auto r = run_with({"--plugin-dir", fixture_dir("open_refuses"), "--backend", "open_refuses"}, "forced_single");
    REQUIRE(r.exit_code == 1);
    REQUIRE(has_line(r.err, kTag + "open_refuses path rejected, no fallback (forced with --backend): open: "
                                   "APR_ERR_UNSUPPORTED: fixture: this model is refused on purpose"));
    REQUIRE(has_line(r.err, "apr-run: error: backend 'open_refuses' was forced with --backend and failed; not falling back"));
    REQUIRE_FALSE(has_line_starting(r.err, "Backend: "));
    REQUIRE(r.out.empty());
}

TEST_CASE("apr-run: a forced backend with no file is a load rejection", "[cli]") {
    auto r = run_with({"--backend", "nosuch"}, "forced_missing");
    REQUIRE(r.exit_code == 1);
    REQUIRE(has_line(r.err, kTag + "nosuch path rejected, no fallback (forced with --backend): load: no plugin file "
                                   "libapr_backend_nosuch.so was found"));
}

TEST_CASE("apr-run: nothing passes -> non-zero exit listing every rejection", "[cli]") {
    auto r = run_with({"--plugin-dir", fixture_dir("open_refuses"), "--plugin-dir", fixture_dir("probe_no_device"),
                       "--backend", "open_refuses,probe_no_device"},
                      "nothing_passes");
    REQUIRE(r.exit_code == 1);
    REQUIRE(has_line(r.err, "error: no backend passed (2 rejected):"));
    REQUIRE(has_line(r.err, "  open_refuses: open: APR_ERR_UNSUPPORTED: fixture: this model is refused on purpose"));
    REQUIRE(has_line(r.err, "  probe_no_device: probe: APR_ERR_NO_DEVICE: fixture: no device here (this fixture never "
                            "finds one)"));
    REQUIRE_FALSE(has_line_starting(r.err, "Backend: "));
}

TEST_CASE("apr-run: --backend order is followed, and APR_BACKEND means the same", "[cli]") {
    // cpu first: the fixture after it is never even tried.
    auto r = run_with({"--plugin-dir", fixture_dir("open_refuses"), "--backend", "cpu,open_refuses"}, "order_flag");
    REQUIRE(r.exit_code == 0);
    REQUIRE(has_line_starting(r.err, "Backend: cpu ("));
    REQUIRE(r.err.find(kTag) == std::string::npos);

    auto e = run_with({"--plugin-dir", fixture_dir("open_refuses")}, "order_env", {{"APR_BACKEND", "open_refuses,cpu"}});
    REQUIRE(e.exit_code == 0);
    REQUIRE(has_line_starting(e.err, kTag + "open_refuses path rejected, attempting fallback: open: "));
    REQUIRE(has_line_starting(e.err, "Backend: cpu ("));
}

TEST_CASE("apr-run: without --backend, higher descriptor priority is tried first", "[cli]") {
    // Both fixtures have priority 1000 (above cpu's 100): both are tried, by name, before cpu.
    // --no-gpu keeps the real GPU plugins (cuda 300, vulkan 200) out of this comparison.
    auto r = run_with({"--plugin-dir", fixture_dir("probe_no_device"), "--plugin-dir", fixture_dir("open_refuses"),
                       "--no-gpu"},
                      "order_priority");
    REQUIRE(r.exit_code == 0);
    auto lines = apr::test::lines_of(r.err);
    std::vector<std::string> tagged;
    for (const auto& l : lines)
        if (l.rfind(kTag, 0) == 0) tagged.push_back(l.substr(kTag.size(), l.find(' ', kTag.size()) - kTag.size()));
    REQUIRE(tagged.size() == 2);
    REQUIRE(tagged[0] == "open_refuses");
    REQUIRE(tagged[1] == "probe_no_device");
    REQUIRE(has_line_starting(r.err, "Backend: cpu ("));
}

TEST_CASE("apr-run: --no-gpu never loads a GPU plugin's file", "[cli]") {
    fs::path dir = apr::test::scratch_dir("no_gpu_marker");
    fs::path marker = dir / "loaded";
    std::map<std::string, std::string> env = clean_env("no_gpu");
    env["APR_FIXTURE_MARKER"] = marker.string();

    auto r = run_process({apr_run(), "--list-backends", "--no-gpu", "--plugin-dir", fixture_dir("gpu_marker")}, env);
    REQUIRE(r.exit_code == 0);
    REQUIRE_FALSE(fs::exists(marker));
    REQUIRE_THAT(r.out, Catch::Contains("skipped (--no-gpu)"));

    // The same without --no-gpu does load it: the marker is a real witness.
    r = run_process({apr_run(), "--list-backends", "--plugin-dir", fixture_dir("gpu_marker")}, env);
    REQUIRE(r.exit_code == 0);
    REQUIRE(fs::exists(marker));
}

TEST_CASE("apr-run: --list-backends shows every file, its origin, shadowing and status", "[cli]") {
    fs::path dir = apr::test::scratch_dir("list_shadow");
    fs::copy_file(apr::test::backend_dir() / "libapr_backend_cpu.so", dir / "libapr_backend_cpu.so");
    auto r = run_process({apr_run(), "--list-backends", "--plugin-dir", dir.string(), "--plugin-dir",
                          fixture_dir("probe_no_device")},
                         clean_env("list"));
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE_THAT(r.out, Catch::Contains("cpu  " + (dir / "libapr_backend_cpu.so").string() + "  [--plugin-dir]"));
    REQUIRE_THAT(r.out, Catch::Contains("shadowed by " + (dir / "libapr_backend_cpu.so").string()));
    REQUIRE_THAT(r.out, Catch::Contains("status: rejected at probe: APR_ERR_NO_DEVICE: fixture: no device here"));
    REQUIRE_THAT(r.out, Catch::Contains("status: usable"));
    // Where it looked, in order: both --plugin-dir folders, then the install folder.
    const size_t searched = r.out.find("searched, in order:\n    " + dir.string() + "  [--plugin-dir]\n    " +
                                       fixture_dir("probe_no_device") + "  [--plugin-dir]\n");
    CHECK(searched != std::string::npos);
    CHECK(r.out.find("  [install]", searched) != std::string::npos);
#if APR_TEST_WITH_CUDA
    // This machine has no NVIDIA driver (CI never does): the real cuda plugin loads and its
    // probe reports the driver's own error. Where a driver exists the probe passes instead.
    if (!fs::exists("/dev/nvidiactl")) REQUIRE_THAT(r.out, Catch::Contains("status: rejected at probe: APR_ERR_NO_DEVICE: cudaGetDeviceCount failed: "));
#endif

    auto j = run_process({apr_run(), "--list-backends", "--json", "--plugin-dir", fixture_dir("probe_no_device")},
                         clean_env("list_json"));
    REQUIRE(j.exit_code == 0);
    REQUIRE(j.out.rfind("{\"backends\": [", 0) == 0);
    REQUIRE_THAT(j.out, Catch::Contains("\"name\": \"probe_no_device\""));
    REQUIRE_THAT(j.out, Catch::Contains("\"rejection\": {\"stage\": \"probe\", \"reason\": \"APR_ERR_NO_DEVICE: fixture: no device here"));
    REQUIRE_THAT(j.out, Catch::Contains("\"name\": \"cpu\""));
    REQUIRE_THAT(j.out, Catch::Contains("\"searched\": [{\"path\": \"" + fixture_dir("probe_no_device") +
                                        "\", \"origin\": \"--plugin-dir\", \"exists\": true}"));

    // A folder that is not there is listed as skipped, so an empty result says where apr looked.
    auto missing = run_process({apr_run(), "--list-backends", "--plugin-dir", (dir / "nowhere").string()},
                               clean_env("list_missing"));
    REQUIRE(missing.exit_code == 0);
    REQUIRE_THAT(missing.out, Catch::Contains((dir / "nowhere").string() + "  [--plugin-dir]  (not a folder: skipped)"));
}

TEST_CASE("apr-run: --skip-parity-gate and APR_SKIP_PARITY_GATE=1 are announced every time", "[cli][gate]") {
    auto r = run_with({"--backend", "cpu", "--skip-parity-gate"}, "skip_flag");
    REQUIRE(r.exit_code == 0);
    REQUIRE(has_line(r.err, "override: parity gate skipped for cpu"));
    // A skipped gate has no figures to show.
    REQUIRE(has_line_starting(r.err, "Backend: cpu ("));
    REQUIRE(r.err.find("parity cos=") == std::string::npos);
    auto e = run_with({"--backend", "cpu"}, "skip_env", {{"APR_SKIP_PARITY_GATE", "1"}});
    REQUIRE(e.exit_code == 0);
    REQUIRE(has_line(e.err, "override: parity gate skipped for cpu"));
}

TEST_CASE("apr-run: the Backend line carries the gate's figures", "[cli][gate]") {
    auto r = run_with({"--backend", "cpu"}, "gate_line");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(has_line_starting(r.err, "Backend: cpu ("));
    REQUIRE_THAT(r.err, Catch::Matches(R"((.|\n)*Backend: cpu \(.*\) — parity cos=[01]\.\d{5} top1 \d+/11, gate \d+\.\d\d s(.|\n)*)"));
}

TEST_CASE("apr-run: the real default order on this machine: cuda, then vulkan, then cpu", "[cli]") {
    auto r = run_process({apr_run(), "-m", apr::test::tiny_model().string(), "-p", "Hello", "-n", "2", "--temp", "0"},
                         clean_env("default_order"));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const bool gpu_driver = fs::exists("/dev/nvidiactl");
#if APR_TEST_WITH_CUDA
    if (!gpu_driver)
        REQUIRE(has_line_starting(r.err, kTag + "cuda path rejected, attempting fallback: probe: APR_ERR_NO_DEVICE: "
                                               "cudaGetDeviceCount failed: "));
#endif
#if APR_TEST_WITH_VULKAN
    // lavapipe is always there (mesa-vulkan-drivers): vulkan serves unless cuda did.
    if (!gpu_driver) REQUIRE(has_line_starting(r.err, "Backend: vulkan ("));
#else
    if (!gpu_driver) REQUIRE(has_line_starting(r.err, "Backend: cpu ("));
#endif
}

TEST_CASE("apr-run: --verbose adds detail but never changes the contract's lines", "[cli]") {
    const std::vector<std::string> args = {"--plugin-dir", fixture_dir("open_refuses"), "--backend", "open_refuses,cpu",
                                           "--no-parity-cache"};
    auto quiet = run_with(args, "verbose_quiet");
    std::vector<std::string> verbose_args = args;
    verbose_args.push_back("--verbose");
    auto verbose = run_with(verbose_args, "verbose_loud");
    REQUIRE(quiet.exit_code == 0);
    REQUIRE(verbose.exit_code == 0);
    auto contract_lines = [](const std::string& err) {
        std::vector<std::string> kept;
        for (const auto& l : apr::test::lines_of(err))
            if (l.rfind(kTag, 0) == 0 || l.rfind("Backend: ", 0) == 0)
                kept.push_back(l.substr(0, l.find(", gate ")));  // the gate's seconds vary
        return kept;
    };
    REQUIRE(contract_lines(verbose.err) == contract_lines(quiet.err));
    REQUIRE(apr::test::lines_of(verbose.err).size() > apr::test::lines_of(quiet.err).size());
}
