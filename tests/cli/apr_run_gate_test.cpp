// The contract apr-cpu-vs-gpu-output-parity-v1 end to end through the real apr-run: one test
// per clause of DESIGN.md ("contract clause <name>: ..."), and one per gate fixture
// (tests/fixtures/wrapping_fixture.cpp), each checking the exact line and the outcome.
#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <regex>

#include "model/ggml_type.hpp"
#include "support/models.hpp"
#include "support/process.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using apr::test::ProcessResult;
using apr::test::run_process;

namespace {

const std::string kTag = "[apr-cpu-vs-gpu-output-parity-v1] ";

std::string apr_run() { return (apr::test::bin_dir() / "apr-run").string(); }
std::string fixture_dir(const std::string& name) { return (apr::test::fixture_dir() / name).string(); }

std::map<std::string, std::string> env_for(const std::string& cache_dir) {
    return {{"XDG_CACHE_HOME", cache_dir}, {"APR_PLUGIN_PATH", ""}, {"APR_BACKEND", ""}, {"APR_SKIP_PARITY_GATE", ""}};
}

std::map<std::string, std::string> fresh_env(const std::string& test) {
    return env_for(apr::test::scratch_dir(test + "_cache").string());
}

// The gate fixture `mode`, then the real cpu backend, greedy.
ProcessResult run_fixture(const std::string& mode, std::vector<std::string> extra = {},
                          std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv = {apr_run(), "-m", apr::test::tiny_model().string(), "-p", "The quick brown fox",
                                     "-n", "12", "--temp", "0", "--plugin-dir", fixture_dir(mode), "--backend",
                                     mode + ",cpu"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto merged = fresh_env("gate_" + mode);
    for (auto& [k, v] : env) merged[k] = v;
    return run_process(argv, merged);
}

std::string line_starting(const std::string& text, const std::string& prefix) {
    for (const auto& l : apr::test::lines_of(text))
        if (l.rfind(prefix, 0) == 0) return l;
    return {};
}

size_t count_tagged(const std::string& text) {
    size_t n = 0;
    for (const auto& l : apr::test::lines_of(text)) n += l.rfind(kTag, 0) == 0;
    return n;
}

// The figure after `key` in a line, e.g. "cosine " -> 0.51.
double number_after(const std::string& line, const std::string& key) {
    size_t at = line.find(key);
    REQUIRE(at != std::string::npos);
    return std::stod(line.substr(at + key.size()));
}

// What cpu alone writes for the same request: the text a failover must reproduce.
std::string cpu_only_text(const std::string& test) {
    auto r = run_process({apr_run(), "-m", apr::test::tiny_model().string(), "-p", "The quick brown fox", "-n", "12",
                          "--temp", "0", "--backend", "cpu"},
                         fresh_env(test));
    REQUIRE(r.exit_code == 0);
    return r.out;
}

}  // namespace

// ---- Gate fixtures --------------------------------------------------------------------------

TEST_CASE("gate fixture noise (cosine ~0.5) is rejected at parity, with the numbers, and cpu serves", "[cli][gate]") {
    auto r = run_fixture("noise");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const std::string line = line_starting(r.err, kTag + "noise path rejected, attempting fallback: parity: ");
    REQUIRE_FALSE(line.empty());
    REQUIRE_THAT(line, Catch::Contains("position 0 of 11 (prefill): cosine "));
    REQUIRE_THAT(line, Catch::Contains("max abs diff"));
    REQUIRE_THAT(line, Catch::Contains("argmax reference "));
    const double cosine = number_after(line, "cosine ");
    REQUIRE(cosine > 0.3);
    REQUIRE(cosine < 0.7);
    REQUIRE_FALSE(line_starting(r.err, "Backend: cpu (").empty());
}

TEST_CASE("gate fixture subtle (cosine ~0.98) is rejected at parity", "[cli][gate]") {
    auto r = run_fixture("subtle");
    const std::string line = line_starting(r.err, kTag + "subtle path rejected, attempting fallback: parity: ");
    INFO(r.err);
    REQUIRE_FALSE(line.empty());
    const double cosine = number_after(line, "cosine ");
    REQUIRE(cosine > 0.96);
    REQUIRE(cosine < 0.99);
    REQUIRE_FALSE(line_starting(r.err, "Backend: cpu (").empty());
}

TEST_CASE("gate fixture argmax_cos97 (right argmax, cosine ~0.97) is rejected at parity on the cosine",
          "[cli][gate]") {
    auto r = run_fixture("argmax_cos97");
    const std::string line = line_starting(r.err, kTag + "argmax_cos97 path rejected, attempting fallback: parity: ");
    INFO(r.err);
    REQUIRE_FALSE(line.empty());
    const double cosine = number_after(line, "cosine ");
    REQUIRE(cosine > 0.95);
    REQUIRE(cosine < 0.99);
    std::smatch m;
    REQUIRE(std::regex_search(line, m, std::regex(R"(argmax reference (\d+) vs backend (\d+))")));
    REQUIRE(m[1] == m[2]);
    REQUIRE_FALSE(line_starting(r.err, "Backend: cpu (").empty());
}

TEST_CASE("gate fixture nan_decode3 (NaN at the third decode step) is rejected at that position", "[cli][gate]") {
    auto r = run_fixture("nan_decode3");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE_FALSE(line_starting(r.err, kTag + "nan_decode3 path rejected, attempting fallback: parity: position 10 of "
                                              "11 (decode step 3): non-finite logit (NaN) at vocab index ")
                      .empty());
    REQUIRE_FALSE(line_starting(r.err, "Backend: cpu (").empty());
}

TEST_CASE("gate fixture low_precision (cosine ~0.9995) passes: no false rejection", "[cli][gate]") {
    auto r = run_fixture("low_precision");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(count_tagged(r.err) == 0);
    const std::string line = line_starting(r.err, "Backend: low_precision (fixture low_precision over cpu) \u2014 parity cos=");
    REQUIRE_FALSE(line.empty());
    const double cosine = number_after(line, "cos=");
    REQUIRE(cosine > 0.999);
    REQUIRE(cosine < 0.99995);
}

TEST_CASE("gate fixture near_tie_swap (top two swapped at near-ties) passes", "[cli][gate]") {
    auto r = run_fixture("near_tie_swap");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(count_tagged(r.err) == 0);
    const std::string line = line_starting(r.err, "Backend: near_tie_swap (");
    REQUIRE_FALSE(line.empty());
    // At least one position really was swapped: fewer top-1 agreements than positions.
    std::smatch m;
    REQUIRE(std::regex_search(line, m, std::regex(R"(top1 (\d+)/(\d+))")));
    REQUIRE(std::stoi(m[1]) < std::stoi(m[2]));
}

TEST_CASE("gate fixture hang (never returns from step) is given up after --gate-timeout", "[cli][gate]") {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = run_fixture("hang", {"--gate-timeout", "2"});
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE_FALSE(line_starting(r.err, kTag + "hang path rejected, attempting fallback: parity: timed out after 2 s")
                      .empty());
    REQUIRE_FALSE(line_starting(r.err, "Backend: cpu (").empty());
    REQUIRE_FALSE(r.out.empty());
    REQUIRE(seconds < 60);
}

// ---- Contract clauses -----------------------------------------------------------------------

TEST_CASE("contract clause Gate: prefill plus decode steps, deepened by --parity-positions (64 works)", "[cli][gate]") {
    for (const char* positions : {"4", "11", "64"}) {
        auto r = run_process({apr_run(), "-m", apr::test::tiny_model().string(), "-p", "Hi", "-n", "2", "--temp", "0",
                              "--backend", "cpu", "--parity-positions", positions},
                             fresh_env(std::string("gate_positions_") + positions));
        INFO(r.err);
        REQUIRE(r.exit_code == 0);
        REQUIRE_THAT(line_starting(r.err, "Backend: cpu ("),
                     Catch::Contains(std::string("/") + positions + ", gate "));
    }
}

TEST_CASE("contract clause Gate: --parity-threshold decides the cosine a backend must reach", "[cli][gate]") {
    // The subtle fixture (cosine ~0.98) passes a gate of 0.95 and fails one of 0.99.
    auto loose = run_fixture("subtle", {"--parity-threshold", "0.95"});
    INFO(loose.err);
    // With the noise, the argmax may still move: when it does, the line says so.
    const std::string rejected = line_starting(loose.err, kTag + "subtle path rejected");
    if (rejected.empty()) {
        REQUIRE_FALSE(line_starting(loose.err, "Backend: subtle (").empty());
    } else {
        REQUIRE_THAT(rejected, Catch::Contains("argmax differs"));
    }
    auto strict = run_fixture("low_precision", {"--parity-threshold", "0.99999"});
    REQUIRE_FALSE(line_starting(strict.err, kTag + "low_precision path rejected, attempting fallback: parity: ").empty());
}

TEST_CASE("contract clause Loud: rejections and the chosen backend are on stderr without --verbose, stdout has only text",
          "[cli][gate]") {
    auto r = run_fixture("noise");
    REQUIRE(count_tagged(r.err) == 1);
    REQUIRE_FALSE(line_starting(r.err, "Backend: cpu (").empty());
    REQUIRE(r.out.find(kTag) == std::string::npos);
    REQUIRE(r.out.find("Backend:") == std::string::npos);
}

TEST_CASE("contract clause Visible overrides: --skip-parity-gate serves the noise fixture, and says so", "[cli][gate]") {
    auto r = run_fixture("noise", {"--skip-parity-gate"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE_FALSE(line_starting(r.err, "override: parity gate skipped for noise").empty());
    REQUIRE_FALSE(line_starting(r.err, "Backend: noise (").empty());
    auto e = run_fixture("noise", {}, {{"APR_SKIP_PARITY_GATE", "1"}});
    REQUIRE_FALSE(line_starting(e.err, "override: parity gate skipped for noise").empty());
}

TEST_CASE("contract clause No false rejections: every shipped backend passes the gate on every supported model type",
          "[cli][gate]") {
    std::vector<std::string> backends = {"cpu"};
#if APR_TEST_WITH_VULKAN
    backends.push_back("vulkan");
#endif
    const uint32_t types[] = {APR_TYPE_F32,  APR_TYPE_F16,  APR_TYPE_BF16, APR_TYPE_Q8_0, APR_TYPE_Q4_0, APR_TYPE_Q4_1,
                              APR_TYPE_Q5_0, APR_TYPE_Q5_1, APR_TYPE_Q4_K, APR_TYPE_Q5_K, APR_TYPE_Q6_K};
    for (const char* arch : {"llama", "qwen2", "qwen3"}) {
        for (uint32_t type : types) {
            apr::SyntheticModelSpec spec;
            spec.arch = arch;
            spec.weight_type = type;
            spec.n_embd = 256;  // whole K-quant blocks
            spec.n_ff = 512;
            const std::string model = apr::test::synthetic_model(spec).string();
            for (const auto& backend : backends) {
                auto r = run_process({apr_run(), "-m", model, "-p", "Hello", "-n", "1", "--temp", "0", "--backend",
                                      backend, "--no-parity-cache"},
                                     fresh_env("no_false_rejections"));
                INFO(arch << " " << apr::ggml_type_name(type) << " on " << backend << ": " << r.err);
                CHECK(r.exit_code == 0);
                CHECK(count_tagged(r.err) == 0);
                CHECK_FALSE(line_starting(r.err, "Backend: " + backend + " (").empty());
            }
        }
    }
}

TEST_CASE("contract clause Drift-proof: the lines apr-run prints are the contract header's", "[cli][gate]") {
    // The unit tests (tests/contract) pin the header's shapes; this pins that apr-run uses them.
    auto r = run_fixture("noise");
    REQUIRE(std::regex_search(r.err, std::regex(R"(\[apr-cpu-vs-gpu-output-parity-v1\] noise path rejected, attempting fallback: parity: .+)")));
    REQUIRE(std::regex_search(
        r.err, std::regex(R"(Backend: cpu \(.+\) )" "\u2014" R"( parity cos=\d\.\d{5} top1 \d+/\d+, gate \d+\.\d\d s)")));
}

TEST_CASE("contract clause Nothing lost: a backend failing mid-generation is replaced and the text continues unchanged",
          "[cli][gate]") {
    const std::string expected = cpu_only_text("nothing_lost_cpu");
    // The gate makes 4 step calls (a prefill and 3 decode steps); generation's prefill is the
    // 5th, so the 8th is its 3rd decode step: some text is already out when it fails.
    auto r = run_fixture("fail_at_step", {}, {{"APR_FIXTURE_FAIL_AT", "8"}});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE_FALSE(line_starting(r.err, "Backend: fail_at_step (").empty());
    REQUIRE_FALSE(line_starting(r.err, kTag + "fail_at_step path rejected, attempting fallback: step: APR_ERR_DEVICE_LOST "
                                              "at position ")
                      .empty());
    REQUIRE_FALSE(line_starting(r.err, "Backend: cpu (").empty());
    REQUIRE_THAT(r.err, Catch::Contains("(1 failover(s))"));
    // Nothing repeated, nothing lost: exactly what cpu alone writes.
    REQUIRE(r.out == expected);
}

// ---- The parity cache -----------------------------------------------------------------------

TEST_CASE("parity cache: a pass is remembered, said on the Backend line, and any key change reruns the gate",
          "[cli][gate]") {
    const std::string cache = apr::test::scratch_dir("parity_cache").string();
    auto run = [&](std::vector<std::string> extra) {
        std::vector<std::string> argv = {apr_run(), "-m", apr::test::tiny_model().string(), "-p", "Hi", "-n", "1",
                                         "--temp", "0", "--backend", "cpu"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return run_process(argv, env_for(cache));
    };
    auto first = run({});
    REQUIRE_THAT(line_starting(first.err, "Backend: cpu ("), Catch::Contains(", gate "));
    auto second = run({});
    REQUIRE_THAT(line_starting(second.err, "Backend: cpu ("), Catch::EndsWith(", cached pass"));
    auto ignored = run({"--no-parity-cache"});
    REQUIRE_THAT(line_starting(ignored.err, "Backend: cpu ("), Catch::Contains(", gate "));
    auto deeper = run({"--parity-positions", "12"});  // another gate setting: another key
    REQUIRE_THAT(line_starting(deeper.err, "Backend: cpu ("), Catch::Contains("top1 12/12, gate "));
    apr::SyntheticModelSpec other;
    other.seed = 99;  // another model file: another key
    auto other_model = run_process({apr_run(), "-m", apr::test::synthetic_model(other).string(), "-p", "Hi", "-n", "1",
                                    "--backend", "cpu"},
                                   env_for(cache));
    REQUIRE_THAT(line_starting(other_model.err, "Backend: cpu ("), Catch::Contains(", gate "));

    // A corrupt entry is a warning and the gate runs again.
    for (const auto& entry : fs::directory_iterator(fs::path(cache) / "apr" / "parity"))
        std::ofstream(entry.path()) << "garbage";
    auto corrupt = run({});
    REQUIRE(corrupt.exit_code == 0);
    REQUIRE_THAT(corrupt.err, Catch::Contains("warning: parity cache entry "));
    REQUIRE_THAT(line_starting(corrupt.err, "Backend: cpu ("), Catch::Contains(", gate "));
}

TEST_CASE("parity cache: an unwritable cache is a warning, never a failure", "[cli][gate]") {
    fs::path dir = apr::test::scratch_dir("parity_cache_unwritable");
    std::ofstream(dir / "apr") << "a file where the cache folder should be";
    auto r = run_process({apr_run(), "-m", apr::test::tiny_model().string(), "-p", "Hi", "-n", "1", "--backend", "cpu"},
                         env_for(dir.string()));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE_THAT(r.err, Catch::Contains("warning: cannot write the parity cache"));
    REQUIRE_FALSE(line_starting(r.err, "Backend: cpu (").empty());
}
