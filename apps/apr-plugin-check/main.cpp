// apr-plugin-check PLUGIN.so [-m MODEL]...: the conformance kit for backend authors. Runs every
// check the core relies on (conformance_checks.hpp), each in a child process of its own, and
// prints a pass/fail table with the reasons. Without -m it gates on small models it writes with
// the project's GGUF writer. Exit codes: 0 every check passed, 1 a check failed, 2 bad command line.
#include <apr/backend.h>
#include <unistd.h>

#include <boost/program_options.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>

#include "conformance_checks.hpp"
#include "model/synthetic_model.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace apr;
using namespace apr::plugin_check;

namespace {

// The models written when no -m is given: every architecture, and each weight type every
// backend must read (F32, F16, Q8_0, Q4_0), tied embeddings and Llama 3 rope_freqs included.
std::vector<CheckModel> write_synthetic_models(const fs::path& dir) {
    struct Entry {
        const char* label;
        const char* arch;
        uint32_t type;
        bool tied, rope_freqs;
    };
    const Entry entries[] = {
        {"llama F32", "llama", APR_TYPE_F32, false, false},
        {"llama Q4_0, tied, rope_freqs", "llama", APR_TYPE_Q4_0, true, true},
        {"qwen2 Q8_0", "qwen2", APR_TYPE_Q8_0, false, false},
        {"qwen3 F16", "qwen3", APR_TYPE_F16, false, false},
    };
    std::vector<CheckModel> models;
    uint64_t seed = 11;
    for (const Entry& e : entries) {
        SyntheticModelSpec spec;
        spec.arch = e.arch;
        spec.weight_type = e.type;
        spec.tied_embeddings = e.tied;
        spec.llama3_rope_freqs = e.rope_freqs;
        spec.seed = seed++;
        if (e.rope_freqs) spec.rope_freq_base = 500000;
        fs::path path = dir / (std::string(e.arch) + "-" + std::to_string(spec.seed) + ".gguf");
        write_synthetic_model(path.string(), spec, 1);  // one thread: the kit forks afterwards
        models.push_back({path, std::string(e.label) + " (synthetic)"});
    }
    return models;
}

const char* verdict_word(Verdict v) { return v == Verdict::pass ? "PASS" : v == Verdict::skip ? "SKIP" : "FAIL"; }

}  // namespace

int main(int argc, char** argv) {
    std::string plugin;
    std::vector<std::string> model_paths;
    double timeout_s = 120;
    CheckContext context;
    po::options_description visible("apr-plugin-check PLUGIN.so [options]\n\n"
                                    "Checks that an apr backend plugin keeps every promise of the plugin ABI v" +
                                    std::to_string(APR_BACKEND_ABI_VERSION) +
                                    " that the core relies on, and that it passes the parity gate.\n\nOptions");
    visible.add_options()("help,h", "show this help")(
        "model,m", po::value(&model_paths), "gate on this GGUF model (repeatable; the first also runs the step checks); "
                                            "default: small synthetic models of every architecture")(
        "timeout", po::value(&timeout_s)->default_value(120), "seconds one check may take before it counts as a hang")(
        "parity-positions", po::value(&context.gate.positions)->default_value(11), "positions the parity gate compares")(
        "parity-threshold", po::value(&context.gate.criteria.min_cosine)->default_value(0.99),
        "minimum cosine similarity")("threads,t", po::value(&context.reference_threads)->default_value(0),
                                     "threads of the reference forward (0: all)");
    po::options_description all;
    all.add(visible).add_options()("plugin", po::value(&plugin));
    po::positional_options_description positional;
    positional.add("plugin", 1);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
        po::notify(vm);
    } catch (const std::exception& e) {
        std::cerr << "apr-plugin-check: error: " << e.what() << "\n";
        return 2;
    }
    if (vm.count("help")) {
        std::cout << visible;
        return 0;
    }
    if (plugin.empty()) {
        std::cerr << "apr-plugin-check: error: give the plugin file (libapr_backend_<name>.so)\n";
        return 2;
    }
    if (!fs::is_regular_file(plugin)) {
        std::cerr << "apr-plugin-check: error: " << plugin << " is not a file\n";
        return 2;
    }
    if (timeout_s <= 0 || context.gate.positions < 4) {
        std::cerr << "apr-plugin-check: error: --timeout must be > 0 and --parity-positions >= 4\n";
        return 2;
    }
    context.plugin = fs::absolute(plugin);
    context.gate.timeout_s = timeout_s;

    fs::path scratch;
    if (model_paths.empty()) {
        char pattern[] = "/tmp/apr-plugin-check-XXXXXX";
        if (!::mkdtemp(pattern)) {
            std::perror("apr-plugin-check: mkdtemp");
            return 1;
        }
        scratch = pattern;
        try {
            context.models = write_synthetic_models(scratch);
        } catch (const std::exception& e) {
            std::cerr << "apr-plugin-check: error: writing the synthetic models: " << e.what() << "\n";
            fs::remove_all(scratch);
            return 1;
        }
    } else {
        for (const auto& p : model_paths) context.models.push_back({p, fs::path(p).filename().string()});
    }

    std::cout << "apr-plugin-check: " << context.plugin.string() << " (ABI v" << APR_BACKEND_ABI_VERSION << ")\n";
    std::printf("%-56s %-6s %s\n", "CHECK", "RESULT", "DETAIL");
    std::fflush(stdout);
    int passed = 0, failed = 0, skipped = 0;
    std::map<std::string, Verdict> verdicts;
    for (const Check& check : conformance_checks(context)) {
        CheckOutcome outcome;
        if (!check.requires_check.empty() && verdicts[check.requires_check] != Verdict::pass) {
            outcome = {Verdict::skip, "needs '" + check.requires_check + "' to pass"};
        } else {
            outcome = run_isolated([&](const ProgressFn& progress) { return check.run(context, progress); }, timeout_s);
        }
        verdicts[check.name] = outcome.verdict;
        (outcome.verdict == Verdict::pass ? passed : outcome.verdict == Verdict::skip ? skipped : failed)++;
        std::printf("%-56s %-6s %s\n", check.name.c_str(), verdict_word(outcome.verdict), outcome.detail.c_str());
        std::fflush(stdout);
    }
    std::printf("%d checks: %d passed, %d failed, %d skipped\n", passed + failed + skipped, passed, failed, skipped);
    if (!scratch.empty()) fs::remove_all(scratch);
    return failed || skipped ? 1 : 0;
}
