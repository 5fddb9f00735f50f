// End to end through the real apr-run on model files: llama.cpp's oracle logits through
// --dump-logits (reference and every backend that runs here), --tokenize on vocab-only files,
// and bad model files getting one clear line and a non-zero exit.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>

#include "support/models.hpp"
#include "support/process.hpp"
#include "support/skip.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using apr::test::run_process;

namespace {

std::string apr_run() { return (apr::test::bin_dir() / "apr-run").string(); }

std::map<std::string, std::string> clean_env(const std::string& test) {
    return {{"XDG_CACHE_HOME", apr::test::scratch_dir(test + "_cache").string()},
            {"APR_PLUGIN_PATH", ""},
            {"APR_BACKEND", ""},
            {"APR_SKIP_PARITY_GATE", ""}};
}

std::vector<float> read_floats(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<float> v(fs::file_size(path) / sizeof(float));
    in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
    return v;
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// The "tokens" array of an oracle JSON file.
std::vector<int32_t> oracle_tokens(const fs::path& json) {
    std::string text = read_text(json);
    std::smatch m;
    REQUIRE(std::regex_search(text, m, std::regex(R"("tokens"\s*:\s*\[([^\]]*)\])")));
    std::vector<int32_t> ids;
    std::stringstream list(m[1].str());
    std::string item;
    while (std::getline(list, item, ',')) ids.push_back(std::stoi(item));
    return ids;
}

std::vector<int32_t> top2(const float* row, size_t n) {
    int32_t a = 0, b = 1;
    if (row[b] > row[a]) std::swap(a, b);
    for (size_t i = 2; i < n; ++i) {
        if (row[i] > row[a]) {
            b = a;
            a = static_cast<int32_t>(i);
        } else if (row[i] > row[b]) {
            b = static_cast<int32_t>(i);
        }
    }
    return {a, b};
}

// The models issue's thresholds against llama.cpp, at every position.
void check_against_llama_cpp(const std::vector<float>& ours, const std::vector<float>& theirs, size_t n_tokens,
                             bool is_f16, const std::string& what) {
    REQUIRE(ours.size() == theirs.size());
    const size_t n_vocab = theirs.size() / n_tokens;
    double worst_cos = 1.0, worst_diff = 0.0;
    for (size_t p = 0; p < n_tokens; ++p) {
        const float* a = &ours[p * n_vocab];
        const float* b = &theirs[p * n_vocab];
        double dot = 0, na = 0, nb = 0, diff = 0;
        for (size_t i = 0; i < n_vocab; ++i) {
            REQUIRE(std::isfinite(a[i]));
            dot += double(a[i]) * b[i];
            na += double(a[i]) * a[i];
            nb += double(b[i]) * b[i];
            diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
        }
        const double cos = dot / std::sqrt(na * nb);
        worst_cos = std::min(worst_cos, cos);
        worst_diff = std::max(worst_diff, diff);
        INFO(what << " position " << p << ": cosine " << cos << ", max abs diff " << diff);
        if (is_f16) {
            CHECK(cos >= 0.9999);
        } else {
            CHECK(cos >= 0.999);
            CHECK(diff <= 5e-2);
        }
        auto ta = top2(a, n_vocab), tb = top2(b, n_vocab);
        if (b[tb[0]] - b[tb[1]] >= 0.01f) {
            CHECK(ta[0] == tb[0]);
        } else {
            CHECK((ta[0] == tb[0] || ta[0] == tb[1]));
            CHECK((tb[0] == ta[0] || tb[0] == ta[1]));
        }
    }
    std::cout << what << ": worst cosine " << worst_cos << ", max abs diff " << worst_diff << "\n";
}

}  // namespace

TEST_CASE("apr-run --dump-logits matches llama.cpp on every oracle model (reference and each backend)", "[cli][oracle]") {
    APR_SKIP_TEST_UNLESS(apr::test::have_testdata(), apr::test::no_testdata_reason());
    const fs::path oracle = apr::test::testdata_dir() / "oracle";
    std::vector<std::string> backends = {"reference", "cpu"};
#if APR_TEST_WITH_VULKAN
    backends.push_back("vulkan");
#endif
    fs::path out_dir = apr::test::scratch_dir("dump_logits");
    for (const char* name : {"F16", "Q8_0", "Q4_0", "Q4_K_M", "Q6_K"}) {
        const std::string stem = std::string("tiny-llama-") + name;
        auto tokens = oracle_tokens(oracle / (stem + ".json"));
        std::string list;
        for (size_t i = 0; i < tokens.size(); ++i) list += (i ? "," : "") + std::to_string(tokens[i]);
        auto theirs = read_floats(oracle / (stem + ".logits.bin"));
        for (const auto& backend : backends) {
            fs::path out = out_dir / (stem + "." + backend + ".bin");
            auto r = run_process({apr_run(), "-m", (oracle / (stem + ".gguf")).string(), "--tokens", list, "--dump-logits",
                                  out.string(), "--backend", backend},
                                 clean_env("dump_logits"));
            INFO(stem << " on " << backend << ": " << r.err);
            REQUIRE(r.exit_code == 0);
            REQUIRE(r.out.empty());  // nothing but the file
            REQUIRE_THAT(r.err, Catch::Contains("Backend: " + backend + " ("));
            check_against_llama_cpp(read_floats(out), theirs, tokens.size(), std::string(name) == "F16",
                                    stem + " on " + backend);
        }
    }
}

TEST_CASE("apr-run --tokenize works on vocab-only GGUF files, like llama-tokenize", "[cli][tokenizer]") {
    APR_SKIP_TEST_UNLESS(apr::test::have_testdata(), apr::test::no_testdata_reason());
    const fs::path vocab = apr::test::testdata_dir() / "vocab";
    // ids for " Hello world" from the .inp/.out pair of the llama SPM vocabulary
    auto r = run_process({apr_run(), "-m", (vocab / "ggml-vocab-llama-spm.gguf").string(), "--tokenize", "-p",
                          "Hello world", "--no-bos"},
                         clean_env("tokenize"));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.out == "15043 3186\n");
    auto with_bos = run_process({apr_run(), "-m", (vocab / "ggml-vocab-llama-spm.gguf").string(), "--tokenize", "-p",
                                 "Hello world"},
                                clean_env("tokenize_bos"));
    REQUIRE(with_bos.out == "1 15043 3186\n");
    auto gpt2 = run_process({apr_run(), "-m", (vocab / "ggml-vocab-gpt-2.gguf").string(), "--tokenize", "-p",
                             "Hello world"},
                            clean_env("tokenize_gpt2"));
    REQUIRE(gpt2.exit_code == 0);
    REQUIRE(gpt2.out == "15496 995\n");
}

TEST_CASE("apr-run: bad model files get one clear line naming the problem and a non-zero exit", "[cli][model]") {
    fs::path dir = apr::test::scratch_dir("bad_models");
    const fs::path good = apr::test::tiny_model();
    const auto size = fs::file_size(good);
    std::vector<char> bytes(size);
    std::ifstream(good, std::ios::binary).read(bytes.data(), static_cast<std::streamsize>(size));

    auto write = [&](const std::string& name, size_t n, const std::function<void(std::vector<char>&)>& patch = {}) {
        std::vector<char> b(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
        if (patch) patch(b);
        fs::path p = dir / name;
        std::ofstream(p, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
        return p.string();
    };
    struct Case {
        std::string file;
        std::string must_contain;
    };
    const std::vector<Case> cases = {
        {(dir / "missing.gguf").string(), "missing.gguf"},
        {write("empty.gguf", 0), "empty.gguf"},
        {write("magic.gguf", size, [](auto& b) { b[0] = 'X'; }), "magic"},
        {write("truncated-header.gguf", 20), "offset"},
        {write("truncated-data.gguf", size - 1000), "offset"},
        {write("half.gguf", size / 2), "offset"},
        {dir.string(), dir.filename().string()},  // a directory
    };
    for (const auto& c : cases) {
        auto r = run_process({apr_run(), "-m", c.file, "-p", "hi", "-n", "2"}, clean_env("bad_models"));
        INFO(c.file << "\nstderr: " << r.err);
        CHECK(r.exit_code == 1);
        CHECK(r.out.empty());
        auto lines = apr::test::lines_of(r.err);
        REQUIRE(lines.size() == 1);
        CHECK(lines[0].rfind("apr-run: error: ", 0) == 0);
        CHECK_THAT(lines[0], Catch::Contains(c.must_contain));
    }
}

TEST_CASE("apr-run: bad flags and values are one line naming the flag, exit 2", "[cli]") {
    struct Case {
        std::vector<std::string> args;
        std::string must_contain;
    };
    const std::vector<Case> cases = {
        {{"--no-such-flag"}, "--no-such-flag"},
        {{"-n", "-5"}, "--n-predict"},
        {{"-n", "many"}, "n-predict"},
        {{"--top-p", "7"}, "--top-p"},
        {{"--temp", "-1"}, "--temp"},
        {{"--parity-threshold", "1.5"}, "--parity-threshold"},
        {{"--parity-positions", "2"}, "--parity-positions"},
        {{"--gate-timeout", "0"}, "--gate-timeout"},
        {{"--threads", "100000"}, "--threads"},
        {{"--backend", "cpu,,vulkan"}, "--backend"},
        {{"--tokens", "1,x", "--dump-logits", "/tmp/x"}, "--tokens"},
        {{"--dump-logits", "/tmp/x"}, "--dump-logits"},
        {{"--json"}, "--json"},
    };
    for (const auto& c : cases) {
        std::vector<std::string> argv = {apr_run()};
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        auto r = run_process(argv, clean_env("bad_flags"));
        INFO(c.args[0] << " -> " << r.err);
        CHECK(r.exit_code == 2);
        auto lines = apr::test::lines_of(r.err);
        REQUIRE(lines.size() == 1);
        CHECK_THAT(lines[0], Catch::Contains(c.must_contain));
    }
}

TEST_CASE("apr-run: --help and --version", "[cli]") {
    auto h = run_process({apr_run(), "--help"});
    REQUIRE(h.exit_code == 0);
    for (const char* flag : {"--model", "--prompt", "--n-predict", "--backend", "--no-gpu", "--plugin-dir",
                             "--list-backends", "--json", "--verbose", "--temp", "--top-k", "--top-p", "--min-p",
                             "--repeat-penalty", "--seed", "--tokens", "--dump-logits", "--tokenize",
                             "--skip-parity-gate", "--parity-threshold", "--parity-positions", "--gate-timeout",
                             "--no-parity-cache"})
        CHECK_THAT(h.out, Catch::Contains(flag));
    auto v = run_process({apr_run(), "--version"});
    REQUIRE(v.exit_code == 0);
    REQUIRE_THAT(v.out, Catch::StartsWith("apr-run "));
}

TEST_CASE("apr-run streams text from the default model on the cpu backend", "[cli]") {
    auto r = run_process({apr_run(), "-p", "Once upon a time", "-n", "12", "--temp", "0", "--backend", "cpu"},
                         clean_env("default_model"));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE_FALSE(r.out.empty());
    REQUIRE_THAT(r.err, Catch::Contains("Backend: cpu ("));
    REQUIRE_THAT(r.err, Catch::Matches(R"((.|\n)*prompt: \d+ tokens, [0-9.]+ tokens/s; generation: \d+ tokens, [0-9.]+ tokens/s(.|\n)*)"));
}
