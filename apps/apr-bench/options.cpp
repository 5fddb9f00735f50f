#include "options.hpp"

#include <boost/program_options.hpp>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "registry/backend_registry.hpp"

namespace apr::bench {

namespace po = boost::program_options;

namespace {

template <typename T>
void check(bool ok, const char* flag, const T& value, const char* rule) {
    if (ok) return;
    std::ostringstream msg;
    msg << flag << ": " << rule << ", got " << value;
    throw OptionsError(msg.str());
}

// "64,512" -> {64, 512}: non-negative integers up to `max`.
std::vector<uint32_t> parse_count_list(const std::string& flag, const std::string& text, uint32_t max) {
    std::vector<uint32_t> values;
    std::string item;
    std::istringstream in(text);
    while (std::getline(in, item, ',')) {
        item.erase(0, item.find_first_not_of(' '));
        item.erase(item.find_last_not_of(' ') + 1);
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || errno != 0 || v < 0 || v > max)
            throw OptionsError(flag + ": '" + item + "' is not a count in 0.." + std::to_string(max) +
                               " (comma-separated list)");
        values.push_back(static_cast<uint32_t>(v));
    }
    if (values.empty()) throw OptionsError(flag + ": no value given");
    return values;
}

}  // namespace

Options parse_options(int argc, const char* const* argv) {
    Options o;
    std::string prompt_list = "512", gen_list = "128", depth_list = "0", backend_list, output = "md";
    std::vector<std::string> plugin_dirs, positional;
    int32_t repetitions = 5, positions = 11;
    std::string thread_list = "0";
    double threshold = 0.99, timeout = 120.0;
    bool skip_gate = false, no_cache = false;

    po::options_description general(
        "apr-bench: prompt (pp) and generation (tg) throughput of every backend that passes the parity gate.\n\n"
        "Usage: apr-bench -m MODEL [-p 512] [-n 128] [-d 0] [-r 5] [--backend LIST] [-t N[,N...]] [-o md|json|csv]\n"
        "       apr-bench -m MODEL --gate-cost [--backend LIST]\n"
        "       apr-bench --make-model SHAPE:TYPE PATH\n\nBenchmark");
    general.add_options()
        ("help,h", "show this help and exit")
        ("version", "show the version and exit")
        ("model,m", po::value<std::string>(&o.model), "GGUF model file")
        ("n-prompt,p", po::value<std::string>(&prompt_list), "prompt sizes to test: N[,N...] (0: none; default 512)")
        ("n-gen,n", po::value<std::string>(&gen_list), "generation lengths to test: N[,N...] (0: none; default 128)")
        ("n-depth,d", po::value<std::string>(&depth_list), "tokens already in the KV cache: N[,N...] (default 0)")
        ("repetitions,r", po::value<int32_t>(&repetitions)->default_value(5), "timed repetitions per test (after one warm-up)")
        ("threads,t", po::value<std::string>(&thread_list), "CPU threads: N[,N...], one set of CPU-backend rows each (0: all cores; default 0)")
        ("output,o", po::value<std::string>(&output), "output format: md | json | csv (default md)")
        ("verbose,v", po::bool_switch(&o.verbose), "log details of discovery, loading and the gate")
        ("gate-cost", po::bool_switch(&o.gate_cost), "instead: per backend, model load, gate (reference and backend) and one decode step's time")
        ("make-model", po::value<std::string>(), "instead: write a synthetic model SHAPE:TYPE (tiny|1b|7b : f32|f16|q8_0|q4_0|...) to PATH and exit");
    po::options_description backends("Backends");
    backends.add_options()
        ("backend", po::value<std::string>(&backend_list), "backends to benchmark: NAME[,NAME...] (env APR_BACKEND; default: every one found)")
        ("no-gpu", po::bool_switch(&o.no_gpu), "CPU backends only; GPU plugins are never loaded")
        ("plugin-dir", po::value<std::vector<std::string>>(&plugin_dirs), "also look for plugins here, first (repeatable)");
    po::options_description gate("Parity gate (apr-cpu-vs-gpu-output-parity-v1)");
    gate.add_options()
        ("skip-parity-gate", po::bool_switch(&skip_gate), "benchmark without the gate (always announced; env APR_SKIP_PARITY_GATE=1)")
        ("parity-threshold", po::value<double>(&threshold)->default_value(0.99, "0.99"), "minimum cosine similarity per position")
        ("parity-positions", po::value<int32_t>(&positions)->default_value(11), "positions the gate compares")
        ("gate-timeout", po::value<double>(&timeout)->default_value(120.0, "120"), "seconds a backend may take for the gate")
        ("no-parity-cache", po::bool_switch(&no_cache), "ignore remembered gate passes");
    po::options_description hidden;
    hidden.add_options()("positional", po::value<std::vector<std::string>>(&positional));
    po::options_description visible;
    visible.add(general).add(backends).add(gate);
    po::options_description all;
    all.add(visible).add(hidden);
    po::positional_options_description pos;
    pos.add("positional", -1);
    std::ostringstream help;
    help << visible;
    o.help_text = help.str();

    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv)
                      .options(all)
                      .positional(pos)
                      .style(po::command_line_style::unix_style)
                      .run(),
                  vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw OptionsError(e.what());
    }
    o.help = vm.count("help") > 0;
    o.version = vm.count("version") > 0;
    if (o.help || o.version) return o;

    if (vm.count("make-model")) {
        o.make_model_spec = vm["make-model"].as<std::string>();
        if (positional.size() != 1) throw OptionsError("--make-model: needs exactly one output PATH after SHAPE:TYPE");
        o.make_model_path = positional[0];
        return o;
    }
    if (!positional.empty()) throw OptionsError("unexpected argument '" + positional[0] + "' (the model goes after -m)");
    if (o.model.empty()) throw OptionsError("-m/--model: a model file is required");

    o.prompt_sizes = parse_count_list("-p/--n-prompt", prompt_list, 1u << 20);
    o.gen_sizes = parse_count_list("-n/--n-gen", gen_list, 1u << 20);
    o.depths = parse_count_list("-d/--n-depth", depth_list, 1u << 20);
    check(repetitions >= 1 && repetitions <= 1000, "-r/--repetitions", repetitions, "must be between 1 and 1000");
    o.thread_counts = parse_count_list("-t/--threads", thread_list, 1024);
    if (output == "md") o.output = OutputFormat::md;
    else if (output == "json") o.output = OutputFormat::json;
    else if (output == "csv") o.output = OutputFormat::csv;
    else throw OptionsError("-o/--output: unknown format '" + output + "' (expected md, json or csv)");
    check(threshold > 0.0 && threshold <= 1.0, "--parity-threshold", threshold, "must be in (0, 1]");
    check(positions >= 4 && positions <= 4096, "--parity-positions", positions, "must be between 4 and 4096");
    check(std::isfinite(timeout) && timeout > 0.0, "--gate-timeout", timeout, "must be > 0 seconds");
    o.repetitions = static_cast<uint32_t>(repetitions);
    o.n_threads = o.thread_counts.front();
    for (const auto& d : plugin_dirs) o.plugin_dirs.emplace_back(d);

    o.gate.skip = skip_gate;
    if (const char* env = std::getenv("APR_SKIP_PARITY_GATE"); env && std::string(env) == "1") o.gate.skip = true;
    o.gate.use_cache = !no_cache;
    o.gate.settings.positions = static_cast<uint32_t>(positions);
    o.gate.settings.criteria.min_cosine = threshold;
    o.gate.settings.timeout_s = timeout;
    o.gate.settings.reference_threads = o.n_threads;
    if (o.gate_cost && o.gate.skip) throw OptionsError("--gate-cost: cannot measure the gate with --skip-parity-gate");

    if (backend_list.empty())
        if (const char* env = std::getenv("APR_BACKEND"); env && *env) backend_list = env;
    if (!backend_list.empty()) {
        try {
            o.backends = parse_backend_list(backend_list);
        } catch (const std::invalid_argument& e) {
            throw OptionsError(std::string("--backend: ") + e.what());
        }
    }
    return o;
}

}  // namespace apr::bench
