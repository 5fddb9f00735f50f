#include "options.hpp"

#include <boost/program_options.hpp>

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "registry/backend_registry.hpp"

namespace apr::run {

namespace po = boost::program_options;

namespace {

template <typename T>
void check(bool ok, const char* flag, const T& value, const char* rule) {
    if (ok) return;
    std::ostringstream msg;
    msg << flag << ": " << rule << ", got " << value;
    throw OptionsError(msg.str());
}

std::vector<int32_t> parse_token_list(const std::string& text) {
    std::vector<int32_t> ids;
    std::string item;
    std::istringstream in(text);
    while (std::getline(in, item, ',')) {
        item.erase(0, item.find_first_not_of(' '));
        item.erase(item.find_last_not_of(' ') + 1);
        char* end = nullptr;
        errno = 0;
        long v = std::strtol(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || errno != 0 || v < 0 || v > INT32_MAX)
            throw OptionsError("--tokens: '" + item + "' is not a token id (comma-separated non-negative integers)");
        ids.push_back(static_cast<int32_t>(v));
    }
    if (ids.empty()) throw OptionsError("--tokens: no token ids given");
    return ids;
}

}  // namespace

Options parse_options(int argc, const char* const* argv) {
    Options o;
    std::string backend_list, token_list;
    std::vector<std::string> plugin_dirs;
    int32_t threads = 0, ctx = 0, positions = 11;
    int64_t seed = -1;

    po::options_description general("apr-run: run a GGUF model on the best backend that passes the parity gate.\n\n"
                                    "Usage: apr-run [-m MODEL] [-p PROMPT] [-n N] [options]\n\nGeneral");
    general.add_options()
        ("help,h", "show this help and exit")
        ("version", "show the version and exit")
        ("model,m", po::value<std::string>(), "GGUF model file (default: the embedded default model)")
        ("prompt,p", po::value<std::string>(), "prompt text")
        ("n-predict,n", po::value<int32_t>(&o.n_predict)->default_value(64), "tokens to generate")
        ("ctx-size,c", po::value<int32_t>(&ctx)->default_value(0), "context length (0: prompt + n-predict)")
        ("threads,t", po::value<int32_t>(&threads)->default_value(0), "CPU threads (0: all cores)")
        ("verbose,v", po::bool_switch(&o.verbose), "log details of discovery, loading and the gate");
    po::options_description backends("Backends");
    backends.add_options()
        ("backend", po::value<std::string>(&backend_list), "backends to try, in order: NAME[,NAME...] (env APR_BACKEND); one name alone never falls back")
        ("no-gpu", po::bool_switch(&o.no_gpu), "CPU backends only; GPU plugins are never loaded")
        ("plugin-dir", po::value<std::vector<std::string>>(&plugin_dirs), "also look for plugins here, first (repeatable)")
        ("list-backends", po::bool_switch(&o.list_backends), "list every plugin file found and its status, then exit")
        ("json", po::bool_switch(&o.json), "with --list-backends: machine-readable output");
    po::options_description sampling("Sampling");
    sampling.add_options()
        ("temp", po::value<float>(&o.temperature)->default_value(0.8f, "0.8"), "temperature (0: greedy)")
        ("top-k", po::value<int32_t>(&o.top_k)->default_value(40), "top-k (0: off)")
        ("top-p", po::value<float>(&o.top_p)->default_value(0.95f, "0.95"), "top-p (1: off)")
        ("min-p", po::value<float>(&o.min_p)->default_value(0.05f, "0.05"), "min-p (0: off)")
        ("repeat-penalty", po::value<float>(&o.repeat_penalty)->default_value(1.0f, "1.0"), "repetition penalty (1: off)")
        ("repeat-last-n", po::value<int32_t>(&o.repeat_last_n)->default_value(64), "tokens the repetition penalty looks back over")
        ("seed", po::value<int64_t>(&seed)->default_value(-1), "random seed (-1: from the clock)");
    po::options_description tools("Comparing with other runtimes");
    tools.add_options()
        ("tokens", po::value<std::string>(&token_list), "evaluate these token ids (1,17,42) as one prefill")
        ("dump-logits", po::value<std::string>(), "with --tokens: write float32 logits [n_tokens x n_vocab] here")
        ("tokenize", po::bool_switch(&o.tokenize), "print the prompt's token ids and exit")
        ("no-bos", po::bool_switch(&o.no_bos), "with --tokenize: do not add BOS");
    po::options_description gate("Parity gate (apr-cpu-vs-gpu-output-parity-v1)");
    gate.add_options()
        ("skip-parity-gate", po::bool_switch(&o.skip_parity_gate), "serve without the gate (always announced; env APR_SKIP_PARITY_GATE=1)")
        ("isolate-gate", po::bool_switch(&o.isolate_gate), "probe, open and gate each backend in a child process first, so that one that crashes or hangs there is rejected (env APR_ISOLATE_GATE=1)")
        ("parity-threshold", po::value<double>(&o.parity_threshold)->default_value(0.99, "0.99"), "minimum cosine similarity per position")
        ("parity-positions", po::value<int32_t>(&positions)->default_value(11), "positions the gate compares (prefill + decode steps)")
        ("gate-timeout", po::value<double>(&o.gate_timeout_s)->default_value(120.0, "120"), "seconds a backend may take for the gate")
        ("no-parity-cache", po::bool_switch(&o.no_parity_cache), "ignore remembered gate passes");
    po::options_description all;
    all.add(general).add(backends).add(sampling).add(tools).add(gate);
    std::ostringstream help;
    help << all;
    o.help_text = help.str();

    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(all).style(po::command_line_style::unix_style).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw OptionsError(e.what());
    }
    o.help = vm.count("help") > 0;
    o.version = vm.count("version") > 0;
    if (vm.count("model")) o.model = vm["model"].as<std::string>();
    if (vm.count("prompt")) o.prompt = vm["prompt"].as<std::string>();
    if (vm.count("dump-logits")) o.dump_logits = vm["dump-logits"].as<std::string>();
    for (const auto& d : plugin_dirs) o.plugin_dirs.emplace_back(d);

    check(o.n_predict >= 0, "--n-predict", o.n_predict, "must be >= 0");
    check(ctx >= 0 && ctx <= (1 << 20), "--ctx-size", ctx, "must be between 0 and 1048576");
    check(threads >= 0 && threads <= 1024, "--threads", threads, "must be between 0 and 1024");
    check(std::isfinite(o.temperature) && o.temperature >= 0.0f, "--temp", o.temperature, "must be >= 0");
    check(o.top_k >= 0, "--top-k", o.top_k, "must be >= 0");
    check(o.top_p > 0.0f && o.top_p <= 1.0f, "--top-p", o.top_p, "must be in (0, 1]");
    check(o.min_p >= 0.0f && o.min_p <= 1.0f, "--min-p", o.min_p, "must be in [0, 1]");
    check(std::isfinite(o.repeat_penalty) && o.repeat_penalty > 0.0f, "--repeat-penalty", o.repeat_penalty, "must be > 0");
    check(o.repeat_last_n >= 0, "--repeat-last-n", o.repeat_last_n, "must be >= 0");
    check(seed >= -1, "--seed", seed, "must be -1 or a non-negative integer");
    check(o.parity_threshold > 0.0 && o.parity_threshold <= 1.0, "--parity-threshold", o.parity_threshold, "must be in (0, 1]");
    check(positions >= 4 && positions <= 4096, "--parity-positions", positions, "must be between 4 and 4096");
    check(std::isfinite(o.gate_timeout_s) && o.gate_timeout_s > 0.0, "--gate-timeout", o.gate_timeout_s, "must be > 0 seconds");
    o.n_ctx = static_cast<uint32_t>(ctx);
    o.n_threads = static_cast<uint32_t>(threads);
    o.parity_positions = static_cast<uint32_t>(positions);
    o.seed_given = seed >= 0;
    o.seed = seed >= 0 ? static_cast<uint64_t>(seed) : 0;

    if (backend_list.empty())
        if (const char* env = std::getenv("APR_BACKEND"); env && *env) backend_list = env;
    if (!backend_list.empty()) {
        try {
            o.backends = parse_backend_list(backend_list);
        } catch (const std::invalid_argument& e) {
            throw OptionsError(std::string("--backend: ") + e.what());
        }
    }
    if (const char* env = std::getenv("APR_SKIP_PARITY_GATE"); env && std::string(env) == "1") o.skip_parity_gate = true;
    if (const char* env = std::getenv("APR_ISOLATE_GATE"); env && *env && std::string(env) != "0") o.isolate_gate = true;
    if (!token_list.empty()) o.tokens = parse_token_list(token_list);
    if (o.dump_logits && !o.tokens) throw OptionsError("--dump-logits: needs --tokens");
    if (o.tokens && !o.dump_logits) throw OptionsError("--tokens: needs --dump-logits");
    if (o.json && !o.list_backends) throw OptionsError("--json: only with --list-backends");
    return o;
}

}  // namespace apr::run
