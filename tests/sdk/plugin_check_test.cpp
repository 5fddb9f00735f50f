// apr-plugin-check, the conformance kit: it passes the shipped backends and fails every fixture
// plugin (tests/fixtures) at the check that its fault breaks, with the reason.
#include <catch2/catch.hpp>

#include <apr/backend.h>
#include <dlfcn.h>

#include "support/models.hpp"
#include "support/process.hpp"
#include "support/skip.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using apr::test::ProcessResult;
using apr::test::run_process;

namespace {

std::string plugin_check() { return (apr::test::bin_dir() / "apr-plugin-check").string(); }
std::string fixture(const std::string& fault) {
    return (apr::test::fixture_dir() / fault / ("libapr_backend_" + fault + ".so")).string();
}

ProcessResult check(const std::string& plugin, std::vector<std::string> extra = {},
                    std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv = {plugin_check(), plugin};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_process(argv, env, 600);
}

// The table row of `name`: the line that starts with it, followed by the result column.
std::string row(const std::string& out, const std::string& name) {
    for (const auto& line : apr::test::lines_of(out))
        if (line.rfind(name + " ", 0) == 0 && line.find_first_not_of(' ', name.size()) != std::string::npos) {
            const auto rest = line.substr(line.find_first_not_of(' ', name.size()));
            if (rest.rfind("PASS", 0) == 0 || rest.rfind("FAIL", 0) == 0 || rest.rfind("SKIP", 0) == 0) return line;
        }
    return "";
}

bool row_is(const std::string& out, const std::string& name, const std::string& verdict) {
    const std::string r = row(out, name);
    return !r.empty() && r.find(" " + verdict + " ") != std::string::npos;
}

const std::vector<std::string> kEveryCheck = {"file name",      "load + ABI",         "descriptor",
                                              "probe",          "open/close",         "step: prefill",
                                              "step: decode",   "logits last vs all", "rewind",
                                              "error reporting"};

void require_all_pass(const ProcessResult& r) {
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    for (const auto& name : kEveryCheck) {
        INFO("check " << name);
        CHECK(row_is(r.out, name, "PASS"));
    }
    CHECK(r.out.find("FAIL") == std::string::npos);
}

}  // namespace

TEST_CASE("apr-plugin-check passes the cpu backend on every synthetic model", "[sdk][plugin-check]") {
    ProcessResult r = check((apr::test::backend_dir() / "libapr_backend_cpu.so").string());
    require_all_pass(r);
    for (const char* model : {"llama F32", "llama Q4_0, tied, rope_freqs", "qwen2 Q8_0", "qwen3 F16"})
        CHECK(row_is(r.out, std::string("parity gate: ") + model + " (synthetic)", "PASS"));
    CHECK(r.out.find("14 checks: 14 passed, 0 failed, 0 skipped") != std::string::npos);
}

TEST_CASE("apr-plugin-check passes the cpu backend on the oracle models given with -m", "[sdk][plugin-check]") {
    APR_SKIP_TEST_UNLESS(apr::test::have_testdata(), apr::test::no_testdata_reason());
    const fs::path oracle = apr::test::testdata_dir() / "oracle";
    ProcessResult r = check((apr::test::backend_dir() / "libapr_backend_cpu.so").string(),
                            {"-m", (oracle / "tiny-llama-Q8_0.gguf").string(), "-m", (oracle / "tiny-llama-Q4_K_M.gguf").string()});
    require_all_pass(r);
    CHECK(row_is(r.out, "parity gate: tiny-llama-Q8_0.gguf", "PASS"));
    CHECK(row_is(r.out, "parity gate: tiny-llama-Q4_K_M.gguf", "PASS"));
}

TEST_CASE("apr-plugin-check passes the vulkan backend where a Vulkan device answers", "[sdk][plugin-check]") {
    APR_SKIP_TEST_UNLESS(APR_TEST_WITH_VULKAN, "the Vulkan backend is not built (APR_WITH_VULKAN=OFF)");
    const std::string plugin = (apr::test::backend_dir() / "libapr_backend_vulkan.so").string();
    // Whether a device is there is the probe's answer, asked the way the kit asks it.
    ProcessResult r = check(plugin);
    APR_SKIP_TEST_UNLESS(!row_is(r.out, "probe", "FAIL"), "no Vulkan device: " + row(r.out, "probe"));
    require_all_pass(r);
}

TEST_CASE("apr-plugin-check fails each fixture plugin at the check its fault breaks, with the reason",
          "[sdk][plugin-check]") {
    struct Expectation {
        std::string fixture, check, reason;
    };
    const std::vector<Expectation> expectations = {
        {"no_descriptor", "load + ABI", "no exported symbol 'apr_backend_descriptor'"},
        {"no_step", "load + ABI", "no exported symbol 'apr_backend_step'"},
        {"unresolved", "load + ABI", "undefined symbol: apr_fixture_symbol_that_does_not_exist"},
        {"wrong_abi_version", "load + ABI", "ABI version 42, this core speaks 1"},
        {"struct_too_small", "load + ABI", "descriptor struct_size"},
        {"name_mismatch", "load + ABI", "differs from the file's backend name"},
        {"probe_no_device", "probe", "APR_ERR_NO_DEVICE: fixture: no device here"},
        {"open_refuses", "open/close", "APR_ERR_UNSUPPORTED: fixture: this model is refused on purpose"},
        {"throws", "open/close", "a C++ exception crossed the plugin ABI"},
        {"step_fails", "step: prefill", "APR_ERR_DEVICE_LOST at position 0: fixture: step fails on purpose"},
        {"gpu_marker", "step: prefill", "step fails on purpose"},
        {"noise", "step: prefill", "cos"},
        {"subtle", "parity gate: llama F32 (synthetic)", "cos"},
        {"argmax_cos97", "parity gate: llama F32 (synthetic)", "cos"},
        {"nan_decode3", "parity gate: llama F32 (synthetic)", "NaN"},
    };
    for (const auto& e : expectations) {
        ProcessResult r = check(fixture(e.fixture));
        INFO("fixture " << e.fixture << "\n" << r.out << r.err);
        CHECK(r.exit_code == 1);
        const std::string line = row(r.out, e.check);
        CHECK(row_is(r.out, e.check, "FAIL"));
        CHECK(line.find(e.reason) != std::string::npos);
        CHECK(r.out.find(" 0 failed") == std::string::npos);
    }
    // A plugin that finds no device is not stepped or gated: those checks are skipped, and
    // the kit still fails.
    ProcessResult no_device = check(fixture("probe_no_device"));
    INFO(no_device.out);
    CHECK(no_device.exit_code == 1);
    CHECK(row(no_device.out, "open/close").find("SKIP   needs 'probe' to pass") != std::string::npos);
    CHECK(row_is(no_device.out, "parity gate: qwen3 F16 (synthetic)", "SKIP"));
}

TEST_CASE("apr-plugin-check passes the gate fixtures that stay within the contract", "[sdk][plugin-check]") {
    // Small noise with the argmax kept, and near-ties swapped, are inside the contract: the
    // kit applies the contract's criteria, not exact equality.
    for (const char* fault : {"low_precision", "near_tie_swap"}) {
        ProcessResult r = check(fixture(fault));
        INFO(fault << "\n" << r.out << r.err);
        require_all_pass(r);
    }
}

TEST_CASE("apr-plugin-check fails a plugin that breaks mid-session, and one that hangs, naming what it was doing",
          "[sdk][plugin-check]") {
    // fail_at_step: the third step call of every session fails.
    ProcessResult failing = check(fixture("fail_at_step"), {}, {{"APR_FIXTURE_FAIL_AT", "3"}});
    INFO(failing.out << failing.err);
    CHECK(failing.exit_code == 1);
    CHECK(row_is(failing.out, "step: prefill", "PASS"));  // one step call per session
    CHECK(row_is(failing.out, "step: decode", "FAIL"));
    CHECK(row(failing.out, "step: decode").find("step call 3 fails on purpose") != std::string::npos);

    const std::string tiny = apr::test::tiny_model().string();
    ProcessResult hang = check(fixture("hang"), {"--timeout", "3", "-m", tiny});
    INFO(hang.out << hang.err);
    CHECK(hang.exit_code == 1);
    CHECK(row_is(hang.out, "open/close", "PASS"));
    const std::string prefill = row(hang.out, "step: prefill");
    CHECK(row_is(hang.out, "step: prefill", "FAIL"));
    CHECK(prefill.find("timed out after 3 s") != std::string::npos);
    CHECK(prefill.find("while: step: prefill of 8 tokens") != std::string::npos);
    CHECK(row_is(hang.out, "parity gate: " + fs::path(tiny).filename().string(), "FAIL"));
}

TEST_CASE("apr-plugin-check reports a file that apr would never load by its name", "[sdk][plugin-check]") {
    const fs::path dir = apr::test::scratch_dir("plugin_check_file_name");
    const fs::path renamed = dir / "cpu_backend.so";
    fs::copy_file(apr::test::backend_dir() / "libapr_backend_cpu.so", renamed);
    ProcessResult r = check(renamed.string(), {"-m", apr::test::tiny_model().string()});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(row_is(r.out, "file name", "FAIL"));
    CHECK(row(r.out, "file name").find("is not named libapr_backend_<name>.so") != std::string::npos);
    CHECK(row(r.out, "load + ABI").find("differs from the file's backend name") != std::string::npos);
    CHECK(row_is(r.out, "probe", "SKIP"));
    CHECK(row(r.out, "probe").find("needs 'load + ABI' to pass") != std::string::npos);
}

TEST_CASE("apr-plugin-check rejects a bad command line with exit code 2", "[sdk][plugin-check]") {
    CHECK(run_process({plugin_check()}).exit_code == 2);
    CHECK(run_process({plugin_check(), "/nonexistent/libapr_backend_x.so"}).exit_code == 2);
    CHECK(run_process({plugin_check(), fixture("noise"), "--timeout", "0"}).exit_code == 2);
    ProcessResult help = run_process({plugin_check(), "--help"});
    CHECK(help.exit_code == 0);
    CHECK(help.out.find("--model") != std::string::npos);
}
