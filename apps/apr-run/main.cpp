// apr-run: the launcher. Parses the command line, finds the backends, loads the model, lets
// the registry pick the first backend that passes the parity gate, and streams generated text.
// Exit codes: 0 done, 1 nothing could serve or the model/input is bad, 2 bad command line.
#include <apr/backend.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <system_error>

#include "contract/parity_contract.hpp"
#include "gate/gate_policy.hpp"
#include "gate/parity_cache.hpp"
#include "gate/parity_gate.hpp"
#include "generation/generator.hpp"
#include "install/install_layout.hpp"
#include "isolation/mapped_file_guard.hpp"
#include "log/log.hpp"
#include "model/gguf_file.hpp"
#include "model/model.hpp"
#include "options.hpp"
#include "reference/reference_forward.hpp"
#include "registry/backend_registry.hpp"
#include "registry/backend_report.hpp"
#include "sampler/sampler.hpp"
#include "tokenizer/tokenizer.hpp"

namespace {

using namespace apr;
using apr::run::Options;

int fail(const std::string& message, int code = 1) {
    std::fflush(stdout);
    std::cerr << "apr-run: error: " << message << std::endl;
    return code;
}

std::string model_path_of(const Options& o) {
    if (o.model) return *o.model;
    return default_model_path().string();
}

uint32_t context_length(const Options& o, size_t prompt_tokens) {
    if (o.n_ctx) return o.n_ctx;
    size_t need = prompt_tokens + static_cast<size_t>(o.n_predict) + 1;
    return static_cast<uint32_t>(std::max<size_t>(need, 16));
}

GatePolicy gate_policy(const Options& o) {
    GatePolicy policy;
    policy.skip = o.skip_parity_gate;
    policy.use_cache = !o.no_parity_cache;
    policy.settings.positions = o.parity_positions;
    policy.settings.criteria.min_cosine = o.parity_threshold;
    policy.settings.timeout_s = o.gate_timeout_s;
    policy.settings.reference_threads = o.n_threads;
    return policy;
}

void print_backend_line(const ServingBackend& serving) {
    log::get().info(contract::backend_line(serving.session->name(), serving.device.description, serving.gate));
}

int list_backends(const Options& o, const BackendRegistry& registry, const PluginSearchPath& search) {
    SelectionOptions selection{o.backends, o.no_gpu};
    std::vector<BackendReportEntry> entries;
    if (o.model) {
        // With a model, go all the way: open a session and run the gate for each backend.
        std::unique_ptr<Model> model;
        try {
            model = Model::load(*o.model);
        } catch (const std::exception& e) {
            return fail(e.what());
        }
        std::unique_ptr<ParityGate> gate;
        ParityCache cache(ParityCache::default_dir());
        const GatePolicy policy = gate_policy(o);
        GateFn gate_fn = make_gate_fn(policy, *model, gate, cache);
        apr_session_config config{sizeof(apr_session_config), std::max<uint32_t>(o.parity_positions, 16), o.n_threads};
        entries = build_backend_report(registry, selection,
                                       [&](PluginLibrary& library, const apr_device_info& device)
                                           -> std::optional<contract::Rejection> {
                                           std::unique_ptr<BackendSession> session;
                                           try {
                                               session = library.open(model->view(), config);
                                               gate_fn(*session, device);
                                               return std::nullopt;
                                           } catch (const RejectionError& e) {
                                               // A hung gate still runs in the plugin: never close it.
                                               if (e.abandon_session) (void)session.release();
                                               return e.rejection;
                                           }
                                       });
    } else {
        entries = build_backend_report(registry, selection);
    }
    const std::vector<SearchFolder> searched = search_folders(search);
    std::cout << (o.json ? render_backend_report_json(entries, searched) : render_backend_report_text(entries, searched));
    return 0;
}

int tokenize(const Options& o) {
    std::unique_ptr<GgufFile> file;
    std::unique_ptr<Tokenizer> tokenizer;
    try {
        file = GgufFile::open(model_path_of(o));
        tokenizer = Tokenizer::from_gguf(*file);
    } catch (const std::exception& e) {
        return fail(e.what());
    }
    std::vector<int32_t> ids = tokenizer->encode(o.prompt.value_or(""), !o.no_bos && tokenizer->add_bos());
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
    return 0;
}

int write_logits(const std::string& path, const std::vector<float>& logits) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
    out.close();
    if (!out) return fail("--dump-logits: cannot write " + path + ": " + std::generic_category().message(errno));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    try {
        o = run::parse_options(argc, argv);
    } catch (const run::OptionsError& e) {
        return fail(e.what(), 2);
    }
    if (o.help) {
        std::cout << o.help_text;
        return 0;
    }
    if (o.version) {
        std::cout << "apr-run " << APR_VERSION << " (backend ABI " << APR_BACKEND_ABI_VERSION << ")\n";
        return 0;
    }
    log::set_verbose(o.verbose);

    const PluginSearchPath search = default_search_path(o.plugin_dirs);
    BackendRegistry registry = BackendRegistry::discover(search);
    if (o.list_backends) return list_backends(o, registry, search);
    if (o.tokenize) return tokenize(o);

    std::unique_ptr<Model> model;
    std::unique_ptr<Tokenizer> tokenizer;
    try {
        model = Model::load(model_path_of(o));
        guard_mapped_file(model->file().bytes(), model->file().path());  // shrinking file: an error, not "Bus error"
        if (!o.tokens) tokenizer = Tokenizer::from_gguf(model->file());
    } catch (const std::exception& e) {
        return fail(e.what());
    }
    const apr_model_view& view = model->view();
    for (int32_t id : o.tokens.value_or(std::vector<int32_t>{}))
        if (static_cast<uint32_t>(id) >= view.n_vocab)
            return fail("--tokens: id " + std::to_string(id) + " is outside the vocabulary (n_vocab " +
                            std::to_string(view.n_vocab) + ")",
                        2);

    std::vector<int32_t> prompt;
    if (o.tokens) {
        prompt = *o.tokens;
    } else {
        prompt = tokenizer->encode(o.prompt.value_or(""), true);
        if (prompt.empty()) prompt.push_back(tokenizer->bos() >= 0 ? tokenizer->bos() : 0);
    }
    const uint32_t n_ctx = std::max(context_length(o, prompt.size()), o.parity_positions);
    if (prompt.size() + static_cast<size_t>(o.n_predict) > n_ctx)
        return fail("--ctx-size: " + std::to_string(n_ctx) + " cannot hold the prompt (" + std::to_string(prompt.size()) +
                        " tokens) and --n-predict " + std::to_string(o.n_predict),
                    2);

    // The core's own forward, for comparing with other runtimes.
    if (o.tokens && o.backends.size() == 1 && o.backends[0] == "reference") {
        std::vector<float> logits(prompt.size() * view.n_vocab);
        try {
            ReferenceForward reference(view, n_ctx, o.n_threads);
            reference.step(prompt.data(), static_cast<uint32_t>(prompt.size()), 0, true, logits.data());
        } catch (const std::exception& e) {
            return fail(e.what());
        }
        log::get().info(contract::backend_line("reference", "apr reference forward, f64 accumulation"));
        return write_logits(*o.dump_logits, logits);
    }

    std::unique_ptr<ParityGate> gate;
    ParityCache cache(ParityCache::default_dir());
    apr_session_config config{sizeof(apr_session_config), n_ctx, o.n_threads};
    const GatePolicy policy = gate_policy(o);
    BackendSelector selector(registry, SelectionOptions{o.backends, o.no_gpu, o.isolate_gate}, view, config,
                             make_gate_fn(policy, *model, gate, cache));
    std::optional<ServingBackend> serving;
    try {
        serving = selector.next();
    } catch (const std::invalid_argument& e) {  // gate settings that cannot work with this model
        return fail(e.what(), 2);
    }
    if (!serving) {
        if (selector.forced_single())
            return fail("backend '" + o.backends[0] + "' was forced with --backend and failed; not falling back");
        for (const auto& line : contract::nothing_passed_lines(selector.rejections())) log::get().info(line);
        return 1;
    }

    if (o.tokens) {
        print_backend_line(*serving);
        std::vector<float> logits(prompt.size() * view.n_vocab);
        try {
            serving->session->step(prompt.data(), static_cast<uint32_t>(prompt.size()), 0, true, logits.data());
        } catch (const RejectionError& e) {
            log::get().info(contract::forced_rejection_line(e.rejection));
            return 1;
        }
        return write_logits(*o.dump_logits, logits);
    }

    SamplerParams params;
    params.temperature = o.temperature;
    params.top_k = o.top_k;
    params.top_p = o.top_p;
    params.min_p = o.min_p;
    params.repeat_penalty = o.repeat_penalty;
    params.repeat_last_n = o.repeat_last_n;
    params.seed = o.seed_given ? o.seed : static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
    Sampler sampler(params, view.n_vocab);

    Generator generator(selector, std::move(*serving), *tokenizer, print_backend_line);
    GenerationStats stats;
    try {
        stats = generator.run(prompt, static_cast<uint32_t>(o.n_predict), sampler, [](std::string_view piece) {
            std::cout << piece << std::flush;
        });
    } catch (const RejectionError&) {
        std::cout << std::endl;
        for (const auto& line : contract::nothing_passed_lines(selector.rejections())) log::get().info(line);
        return 1;
    }
    std::cout << std::endl;
    auto rate = [](uint32_t n, double s) { return s > 0 ? n / s : 0.0; };
    log::get().info("prompt: {} tokens, {:.1f} tokens/s; generation: {} tokens, {:.1f} tokens/s{}", stats.prompt_tokens,
                    rate(stats.prompt_tokens, stats.prompt_seconds), stats.generated_tokens,
                    rate(stats.generated_tokens, stats.generation_seconds),
                    stats.failovers ? " (" + std::to_string(stats.failovers) + " failover(s))" : "");
    return 0;
}
