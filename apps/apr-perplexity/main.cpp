// apr-perplexity: a model's perplexity on a text file, on the backend the registry and the parity
// gate choose (or the core's reference forward with --backend reference), computed as
// llama-perplexity computes it (core/src/eval/perplexity.hpp). Without -m it measures the
// default model. Exit codes: 0 done, 1 bad model/text or no backend, 2 bad command line.
#include <apr/backend.h>

#include <boost/program_options.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "contract/parity_contract.hpp"
#include "eval/perplexity.hpp"
#include "gate/gate_policy.hpp"
#include "gate/parity_cache.hpp"
#include "install/install_layout.hpp"
#include "log/log.hpp"
#include "model/model.hpp"
#include "reference/reference_forward.hpp"
#include "registry/backend_registry.hpp"
#include "registry/plugin_discovery.hpp"
#include "tokenizer/tokenizer.hpp"

namespace po = boost::program_options;
using namespace apr;

namespace {

int fail(const std::string& message, int code = 1) {
    std::fflush(stdout);
    std::cerr << "apr-perplexity: error: " << message << std::endl;
    return code;
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::string model_path, text_path, backends;
    long long n_ctx = 0, chunks = 0, threads = 0;
    std::vector<std::string> plugin_dirs;
    po::options_description opts(
        "apr-perplexity: perplexity of a model on a text (llama-perplexity's method)\n\n"
        "Usage: apr-perplexity [-m MODEL] -f TEXT [-c N_CTX] [--chunks N] [--backend LIST]\n\nOptions");
    opts.add_options()
        ("help,h", "show this help and exit")
        ("model,m", po::value(&model_path), "GGUF model (default: the default model installed with apr)")
        ("file,f", po::value(&text_path), "text file to score (UTF-8)")
        ("ctx-size,c", po::value(&n_ctx), "tokens per chunk (default: the model's context length, at most 512)")
        ("chunks", po::value(&chunks), "score only the first N chunks (default: all)")
        ("backend", po::value(&backends), "backends to try in order: NAME[,NAME...]; 'reference' = the core's own forward")
        ("no-gpu", "CPU backends only")
        ("plugin-dir", po::value(&plugin_dirs), "also look for plugins here, first (repeatable)")
        ("threads,t", po::value(&threads), "CPU threads (0: all cores)")
        ("skip-parity-gate", "score without the parity gate (announced)")
        ("verbose,v", "log details");
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, opts), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        return fail(e.what(), 2);
    }
    if (vm.count("help")) {
        std::cout << opts << "\n";
        return 0;
    }
    if (text_path.empty()) return fail("-f/--file: the text to score is required", 2);
    if (vm.count("ctx-size") && (n_ctx < 4 || n_ctx > (1 << 20))) return fail("--ctx-size: must be in 4..1048576", 2);
    if (vm.count("chunks") && (chunks < 1 || chunks > (1 << 30))) return fail("--chunks: must be at least 1", 2);
    if (threads < 0 || threads > 4096) return fail("--threads: must be in 0..4096", 2);
    log::set_verbose(vm.count("verbose") > 0);

    std::ifstream in(text_path, std::ios::binary);
    if (!in) return fail("-f: cannot open " + text_path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

    std::unique_ptr<Model> model;
    std::unique_ptr<Tokenizer> tokenizer;
    try {
        model = Model::load(model_path.empty() ? default_model_path().string() : model_path);
        tokenizer = Tokenizer::from_gguf(model->file());
    } catch (const std::exception& e) {
        return fail(e.what());
    }
    const apr_model_view& view = model->view();
    const uint32_t ctx = n_ctx ? uint32_t(n_ctx) : std::min<uint32_t>(view.n_ctx_train ? view.n_ctx_train : 512, 512);
    const std::vector<int32_t> tokens = tokenizer->encode(text, true);
    std::cerr << "apr-perplexity: " << text_path << ": " << text.size() << " bytes, " << tokens.size() << " tokens, chunks of "
              << ctx << "\n";

    PerplexityStepFn step;
    std::unique_ptr<ReferenceForward> reference;
    std::optional<ServingBackend> serving;
    std::unique_ptr<ParityGate> gate;
    ParityCache cache(ParityCache::default_dir());
    std::vector<std::string> order = split_list(backends);
    BackendRegistry registry = BackendRegistry::discover(
        default_search_path(std::vector<std::filesystem::path>(plugin_dirs.begin(), plugin_dirs.end())));
    std::unique_ptr<BackendSelector> selector;
    try {
        if (order.size() == 1 && order[0] == "reference") {
            reference = std::make_unique<ReferenceForward>(view, ctx, unsigned(threads));
            log::get().info(contract::backend_line("reference", "apr reference forward, f64 accumulation"));
            step = [&](const int32_t* t, uint32_t n, float* logits) { reference->step(t, n, 0, true, logits); };
        } else {
            GatePolicy policy;
            policy.skip = vm.count("skip-parity-gate") > 0;
            policy.settings.reference_threads = unsigned(threads);
            apr_session_config config{sizeof(apr_session_config), std::max(ctx, policy.settings.positions), unsigned(threads)};
            selector = std::make_unique<BackendSelector>(registry, SelectionOptions{order, vm.count("no-gpu") > 0, false},
                                                         view, config, make_gate_fn(policy, *model, gate, cache));
            serving = selector->next();
            if (!serving) {
                for (const auto& line : contract::nothing_passed_lines(selector->rejections())) log::get().info(line);
                return 1;
            }
            log::get().info(contract::backend_line(serving->session->name(), serving->device.description, serving->gate));
            step = [&](const int32_t* t, uint32_t n, float* logits) { serving->session->step(t, n, 0, true, logits); };
        }
        const PerplexityResult r = compute_perplexity(tokens, ctx, tokenizer->bos(), view.n_vocab, uint32_t(chunks), step,
                                                      [](uint32_t c, double ppl) {
                                                          std::cerr << "[" << (c + 1) << "]" << ppl << (c % 8 == 7 ? "\n" : " ");
                                                      });
        std::cerr << "\n";
        std::printf("perplexity: %.4f (mean nll %.6f) over %u chunks of %u tokens, %llu scored tokens\n", r.ppl, r.mean_nll,
                    r.chunks, ctx, static_cast<unsigned long long>(r.scored_tokens));
    } catch (const RejectionError& e) {
        log::get().info(contract::forced_rejection_line(e.rejection));
        return 1;
    } catch (const std::exception& e) {
        return fail(e.what());
    }
    return 0;
}
