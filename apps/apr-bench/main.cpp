// apr-bench: prompt and generation throughput of every backend that passes the parity gate, in
// llama-bench's shape, with the generation's memory-bandwidth fraction; also writes benchmark
// models (--make-model) and measures what the parity gate costs (--gate-cost).
// Exit codes: 0 done, 1 no backend could be benchmarked or the model is bad, 2 bad command line.
#include <apr/backend.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "bench/bench_table.hpp"
#include "gate/gate_policy.hpp"
#include "bench/host_bandwidth.hpp"
#include "bench/model_footprint.hpp"
#include "bench/throughput.hpp"
#include "contract/parity_contract.hpp"
#include "log/log.hpp"
#include "model/ggml_type.hpp"
#include "model/model.hpp"
#include "model/synthetic_model.hpp"
#include "options.hpp"
#include "registry/backend_registry.hpp"
#include "registry/plugin_discovery.hpp"
#include "registry/plugin_library.hpp"

namespace {

using namespace apr;
using namespace apr::bench;
using Clock = std::chrono::steady_clock;

int fail(const std::string& message, int code = 1) {
    std::fflush(stdout);
    std::cerr << "apr-bench: error: " << message << std::endl;
    return code;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// --make-model SHAPE:TYPE PATH
int make_model(const Options& o) {
    const std::string& spec_text = *o.make_model_spec;
    const size_t colon = spec_text.find(':');
    if (colon == std::string::npos)
        return fail("--make-model: '" + spec_text + "' is not SHAPE:TYPE (e.g. 1b:q4_0)", 2);
    SyntheticModelSpec spec;
    try {
        spec = synthetic_preset(spec_text.substr(0, colon));
    } catch (const SyntheticSpecError&) {
        return fail("--make-model: unknown shape '" + spec_text.substr(0, colon) + "' (expected tiny|1b|7b)", 2);
    }
    const auto type = ggml_type_from_name(spec_text.substr(colon + 1));
    if (!type)
        return fail("--make-model: unknown type '" + spec_text.substr(colon + 1) +
                        "' (expected f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q4_k|q5_k|q6_k)",
                    2);
    spec.weight_type = *type;
    try {
        write_synthetic_model(o.make_model_path, spec, o.n_threads);
    } catch (const SyntheticSpecError& e) {
        return fail("--make-model: " + spec_text + ": " + e.what(), 2);
    } catch (const std::exception& e) {
        return fail(e.what());
    }
    std::cout << "wrote " << o.make_model_path << " (" << spec_text << ")\n";
    return 0;
}

// Every backend to benchmark, in turn: one selector walks the --backend list (or, without
// one, every backend found, by priority) through load, ABI check, probe, open and the gate,
// printing the rejection line of each that fails; asked again after a backend has been
// benchmarked, it goes on with the next one. A single name given with --backend is the
// forced case, whose failure says "no fallback".
BackendSelector make_selector(const Options& o, const BackendRegistry& registry, const Model& model, uint32_t n_ctx,
                              GateFn gate_fn, uint32_t n_threads, const std::vector<std::string>& backends) {
    const apr_session_config config{sizeof(apr_session_config), n_ctx, n_threads};
    return BackendSelector(registry, SelectionOptions{backends, o.no_gpu}, model.view(), config, std::move(gate_fn));
}
BackendSelector make_selector(const Options& o, const BackendRegistry& registry, const Model& model, uint32_t n_ctx,
                              GateFn gate_fn) {
    return make_selector(o, registry, model, n_ctx, std::move(gate_fn), o.n_threads, o.backends);
}

unsigned threads_shown(uint32_t n_threads) {
    return n_threads ? n_threads : std::max(1u, std::thread::hardware_concurrency());
}

int benchmark(const Options& o, const BackendRegistry& registry, const Model& model) {
    const std::vector<ThroughputTest> tests = make_tests(o.prompt_sizes, o.gen_sizes, o.depths);
    if (tests.empty()) return fail("-p/-n: every test size is 0; nothing to run", 2);
    uint32_t n_ctx = gate_context_length(o.gate.settings);
    for (const ThroughputTest& t : tests) n_ctx = std::max(n_ctx, t.context_needed());

    std::unique_ptr<ParityGate> gate;
    ParityCache cache(ParityCache::default_dir());
    const GateFn gate_fn = make_gate_fn(o.gate, model, gate, cache);
    const ModelFootprint footprint = model_footprint(model.view());

    BenchReport report;
    size_t served = 0;
    // One pass per -t value. The first pass takes every backend asked for; later passes only the
    // CPU backends the first one served (a GPU backend's rows would not change with threads).
    std::vector<std::string> backends = o.backends;
    for (size_t pass = 0; pass < o.thread_counts.size(); ++pass) {
        const uint32_t n_threads = o.thread_counts[pass];
        if (pass > 0 && backends.empty()) break;
        std::vector<std::string> cpu_served;
        BackendSelector selector = make_selector(o, registry, model, n_ctx, gate_fn, n_threads, backends);
        while (true) {
            std::optional<ServingBackend> serving;
            try {
                serving = selector.next();
            } catch (const std::invalid_argument& e) {  // gate settings that cannot work with this model
                return fail(e.what(), 2);
            }
            if (!serving) break;
            ++served;
            const std::string name = serving->session->name();
            if (!serving->session->library().is_gpu()) cpu_served.push_back(name);
            log::get().info(contract::backend_line(name, serving->device.description, serving->gate));
            ThroughputRunner runner(*serving->session, model.view());
            const size_t first_row = report.rows.size();
            for (const ThroughputTest& test : tests) {
                ThroughputResult result;
                try {
                    result = runner.run(test, o.repetitions);
                } catch (const RejectionError& e) {
                    log::get().info(contract::rejection_line(e.rejection));
                    break;  // this backend's remaining tests get no rows
                }
                BenchRow row;
                row.model = footprint;
                row.backend = name;
                row.device = serving->device.description;
                row.gpu = serving->session->library().is_gpu();
                row.threads = threads_shown(n_threads);
                row.test = test.name();
                row.generation = test.kind == ThroughputTest::Kind::generation;
                row.n_tokens = test.n_tokens;
                row.depth = test.depth;
                row.samples = result.tokens_per_s;
                row.tokens_per_s = result.stats;
                report.rows.push_back(std::move(row));
            }
            // A GPU's copy rate, measured by its plugin on the session just benchmarked (the
            // bandwidth fraction's denominator for these rows); CPU rows use the host's, below.
            if (serving->session->library().is_gpu() && report.rows.size() > first_row) {
                const std::optional<double> rate = serving->session->measure_copy_rate();
                for (size_t i = first_row; i < report.rows.size(); ++i) report.rows[i].device_copy_bytes_per_s = rate;
            }
        }
        backends = cpu_served;
    }
    if (served == 0) return fail("no backend passed; nothing was benchmarked");

    // After every session is closed, so the copy has the memory to itself.
    try {
        // With the most threads asked for: the copy rate the machine allows.
        report.host = measure_host_bandwidth(threads_shown(*std::max_element(
            o.thread_counts.begin(), o.thread_counts.end(),
            [](uint32_t a, uint32_t b) { return threads_shown(a) < threads_shown(b); })));
    } catch (const std::bad_alloc&) {
        log::get().warn("apr-bench: not enough memory for the host bandwidth measurement; no bandwidth fractions");
    }
    for (BenchRow& row : report.rows) attach_bandwidth(row, report.host);
    std::cout << render(report, o.output) << std::flush;
    return 0;
}

// --gate-cost: what the parity gate costs next to loading the model and one decode step.
int gate_cost(const Options& o, const BackendRegistry& registry, const Model& model, double model_load_s) {
    GatePolicy policy = o.gate;
    policy.use_cache = false;  // a remembered pass would measure nothing
    const uint32_t decode_steps = 8;
    const uint32_t n_ctx = std::max(gate_context_length(policy.settings), decode_steps + 1);

    std::unique_ptr<ParityGate> gate;
    ParityCache cache(ParityCache::default_dir());
    GateCallRecord record;
    const GateFn inner = make_gate_fn(policy, model, gate, cache, &record);
    Clock::time_point selection_start, gate_start;
    const GateFn timed = [&](BackendSession& session, const apr_device_info& device) {
        gate_start = Clock::now();
        return inner(session, device);
    };

    size_t served = 0;
    BackendSelector selector = make_selector(o, registry, model, n_ctx, timed);
    while (true) {
        std::optional<ServingBackend> serving;
        // Includes the attempts on backends rejected before this one.
        selection_start = gate_start = Clock::now();
        try {
            serving = selector.next();
        } catch (const std::invalid_argument& e) {
            return fail(e.what(), 2);
        }
        if (!serving) break;
        ++served;
        const std::string name = serving->session->name();
        const double open_s = std::chrono::duration<double>(gate_start - selection_start).count();
        log::get().info(contract::backend_line(name, serving->device.description, serving->gate));
        double step_s = 0;
        try {
            step_s = ThroughputRunner(*serving->session, model.view()).decode_step_seconds(decode_steps);
        } catch (const RejectionError& e) {
            log::get().info(contract::rejection_line(e.rejection));
            continue;
        }
        const double reference_s = gate->reference_seconds();
        const double backend_s = record.seconds - record.reference_seconds;
        const double gate_s = reference_s + backend_s;
        std::printf("gate cost: %s (%s)\n", name.c_str(), serving->device.description);
        std::printf("  model load:          %.4g s (map and validate the file)\n", model_load_s);
        std::printf("  load+probe+open:     %.4g s (plugin, device, session with the weights)\n", open_s);
        std::printf("  gate:                %.4g s = reference %.4g s%s + backend %.4g s (%u positions)\n", gate_s,
                    reference_s, record.reference_seconds > 0 ? "" : " (computed once, reused)", backend_s,
                    policy.settings.positions);
        std::printf("  decode step:         %.4g s (median of %u)\n", step_s, decode_steps);
        std::printf("  gate / decode step:  %.1f x\n", step_s > 0 ? gate_s / step_s : 0.0);
        std::printf("  gate / model load:   %.1f x\n", model_load_s > 0 ? gate_s / model_load_s : 0.0);
    }
    if (served == 0) return fail("no backend passed; no gate cost to report");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    try {
        o = parse_options(argc, argv);
    } catch (const OptionsError& e) {
        return fail(e.what(), 2);
    }
    if (o.help) {
        std::cout << o.help_text;
        return 0;
    }
    if (o.version) {
        std::cout << "apr-bench " << APR_VERSION << " (backend ABI " << APR_BACKEND_ABI_VERSION << ")\n";
        return 0;
    }
    log::set_verbose(o.verbose);
    if (o.make_model_spec) return make_model(o);

    BackendRegistry registry = BackendRegistry::discover(default_search_path(o.plugin_dirs));
    std::unique_ptr<Model> model;
    const auto t0 = Clock::now();
    try {
        model = Model::load(o.model);
    } catch (const std::exception& e) {
        return fail(e.what());
    }
    const double model_load_s = seconds_since(t0);
    return o.gate_cost ? gate_cost(o, registry, *model, model_load_s) : benchmark(o, registry, *model);
}
