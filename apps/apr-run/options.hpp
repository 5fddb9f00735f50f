// apr-run's command line: every flag, its default, and the checks on its value. Parsing never
// exits the process; errors come back as OptionsError with a one-line message naming the flag.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace apr::run {

struct OptionsError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Options {
    bool help = false;
    bool version = false;
    std::string help_text;

    std::optional<std::string> model;            // -m; default: the embedded default model
    std::optional<std::string> prompt;           // -p
    int32_t n_predict = 64;                      // -n
    uint32_t n_ctx = 0;                          // -c; 0 = prompt + n_predict (at least the gate's)
    uint32_t n_threads = 0;                      // -t; 0 = all cores

    std::vector<std::string> backends;           // --backend a,b,c (or APR_BACKEND)
    bool no_gpu = false;
    std::vector<std::filesystem::path> plugin_dirs;
    bool list_backends = false;
    bool json = false;
    bool verbose = false;

    // sampling (llama.cpp's names)
    float temperature = 0.8f;
    int32_t top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    float repeat_penalty = 1.0f;
    int32_t repeat_last_n = 64;
    uint64_t seed = 0;
    bool seed_given = false;

    // comparing with other runtimes
    std::optional<std::vector<int32_t>> tokens;  // --tokens 1,17,42
    std::optional<std::string> dump_logits;      // --dump-logits out.bin
    bool tokenize = false;
    bool no_bos = false;

    // the parity gate
    bool skip_parity_gate = false;               // or APR_SKIP_PARITY_GATE=1
    bool isolate_gate = false;                   // or APR_ISOLATE_GATE=1: probe/open/gate in a child process
    double parity_threshold = 0.99;
    uint32_t parity_positions = 11;
    double gate_timeout_s = 120.0;
    bool no_parity_cache = false;
};

// Parses argv plus the environment variables that stand for flags (APR_BACKEND,
// APR_SKIP_PARITY_GATE). Throws OptionsError.
Options parse_options(int argc, const char* const* argv);

}  // namespace apr::run
