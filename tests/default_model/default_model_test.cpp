// The default model (models/apr-fortunes-6m-q8_0.gguf, made by tools/train-default-model):
// what apr-run shows a newcomer. Greedy text must be the same on every backend CI has (a backend
// that computes wrongly turns it into different text), the tokenizer must give the prompt back,
// and apr's perplexity on the held-out fortunes must agree with the training script's figure.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <sstream>

#include "install/install_layout.hpp"
#include "model/gguf_file.hpp"
#include "support/process.hpp"
#include "support/skip.hpp"
#include "support/testdata.hpp"
#include "tokenizer/tokenizer.hpp"

namespace fs = std::filesystem;
using apr::test::run_process;

namespace {

const char* kPrompt = "A wise man once said";

fs::path default_model() { return apr::test::bin_dir() / ".." / "share" / "apr" / "default-model.gguf"; }
fs::path tool_dir() { return fs::path(APR_TEST_SOURCE_DIR) / "tools" / "train-default-model"; }

std::map<std::string, std::string> clean_env() {
    return {{"APR_PLUGIN_PATH", ""}, {"APR_BACKEND", ""}, {"APR_SKIP_PARITY_GATE", ""}, {"XDG_CACHE_HOME", ""}};
}

apr::test::ProcessResult greedy(const std::string& backend) {
    return run_process({(apr::test::bin_dir() / "apr-run").string(), "-p", kPrompt, "-n", "32", "--temp", "0",
                        "--no-parity-cache", "--backend", backend},
                       clean_env());
}

double number_after(const std::string& text, const std::string& key) {
    std::smatch m;
    if (!std::regex_search(text, m, std::regex("\"" + key + "\":\\s*([0-9.eE+-]+)"))) return -1;
    return std::stod(m[1]);
}

}  // namespace

TEST_CASE("default model: apr-run without -m writes the same 32 greedy tokens on cpu and vulkan", "[default_model]") {
    REQUIRE(fs::exists(default_model()));
    const auto cpu = greedy("cpu");
    INFO(cpu.err);
    REQUIRE(cpu.exit_code == 0);
    CHECK(cpu.err.find("Backend: cpu") != std::string::npos);
    // 32 tokens of text: far more than a few characters, and no replacement characters.
    CHECK(cpu.out.size() > 60);
    CHECK(cpu.out.find("\xEF\xBF\xBD") == std::string::npos);
    APR_SKIP_TEST_UNLESS(APR_TEST_WITH_VULKAN, "the Vulkan plugin is not built");
    const auto vulkan = greedy("vulkan");
    INFO(vulkan.err);
    REQUIRE(vulkan.exit_code == 0);
    CHECK(vulkan.err.find("Backend: vulkan") != std::string::npos);
    CHECK(vulkan.out == cpu.out);
}

TEST_CASE("default model: the tokenizer round-trips the prompt", "[default_model]") {
    auto file = apr::GgufFile::open(default_model().string());
    auto tokenizer = apr::Tokenizer::from_gguf(*file);
    for (const std::string& text : {std::string(kPrompt), std::string("Once upon a time, 42 cats -- said Zippy.\n\t%\n")}) {
        const auto ids = tokenizer->encode(text, true);
        REQUIRE(ids.size() > 1);
        CHECK(ids.front() == tokenizer->bos());
        CHECK(tokenizer->decode(ids) == text);
    }
}

TEST_CASE("default model: apr-perplexity on the held-out fortunes agrees with the training script within 1%",
          "[default_model]") {
    std::ifstream report_in(tool_dir() / "report.json");
    REQUIRE(report_in);
    std::stringstream report;
    report << report_in.rdbuf();
    const double expected = number_after(report.str(), "heldout_ppl_q8_0_first16");
    REQUIRE(expected > 1);
    const auto r = run_process({(apr::test::bin_dir() / "apr-perplexity").string(), "-f",
                                (tool_dir() / "heldout.txt").string(), "--chunks", "16", "--backend", "cpu"},
                               clean_env());
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    std::smatch m;
    REQUIRE(std::regex_search(r.out, m, std::regex("perplexity: ([0-9.]+) .* over 16 chunks of 256 tokens, 2032 scored")));
    const double measured = std::stod(m[1]);
    INFO("apr " << measured << ", training script " << expected);
    CHECK(std::abs(measured / expected - 1.0) < 0.01);
}
