// apr-bench's command line. Parsing never exits the process; errors come back as OptionsError
// with a one-line message naming the flag.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/bench_table.hpp"
#include "gate/gate_policy.hpp"

namespace apr::bench {

struct OptionsError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Options {
    bool help = false;
    bool version = false;
    std::string help_text;

    std::string model;                        // -m
    std::vector<uint32_t> prompt_sizes{512};  // -p 64,512
    std::vector<uint32_t> gen_sizes{128};     // -n 32,128
    std::vector<uint32_t> depths{0};          // -d 0,4096
    uint32_t repetitions = 5;                 // -r
    uint32_t n_threads = 0;                   // -t; 0 = all cores (the first of the list)
    std::vector<uint32_t> thread_counts{0};   // -t 1,2,4: one pass of the CPU backends each
    OutputFormat output = OutputFormat::md;   // -o

    std::vector<std::string> backends;        // --backend a,b (or APR_BACKEND); empty = every backend found
    bool no_gpu = false;
    std::vector<std::filesystem::path> plugin_dirs;
    bool verbose = false;

    std::optional<std::string> make_model_spec;  // --make-model 7b:q4_0
    std::string make_model_path;                  // its PATH
    bool gate_cost = false;

    GatePolicy gate;  // --skip-parity-gate, --no-parity-cache, --parity-*, --gate-timeout
};

// Parses argv plus APR_BACKEND and APR_SKIP_PARITY_GATE. Throws OptionsError.
Options parse_options(int argc, const char* const* argv);

}  // namespace apr::bench
