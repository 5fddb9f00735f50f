// Throughput figures of the CPU plugin (hidden tag: run with `apr_tests "[.cpu-bench]"`): the
// host's copy bandwidth (a plain memcpy loop), then prefill (64 tokens) and decode tokens/s on
// 1B-shaped synthetic Q4_0 and Q8_0 models with 2 threads, and the weight bytes decode
// streams per second as a share of that bandwidth. The models are written once into the
// test work folder and kept for later runs.
#include <catch2/catch.hpp>

#include <time.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>

#include "cpu/cpu_plugin_support.hpp"
#include "model/model.hpp"
#include "model/synthetic_model.hpp"

namespace {

using namespace apr::test::cpu;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// CPU seconds used by the whole process so far: on a shared, busy host the wall clock mostly
// measures the neighbours, CPU time per token measures the plugin.
double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Bytes copied per second by memcpy between two 512 MiB buffers (best of 5 passes).
double copy_bandwidth() {
    const size_t n = size_t{512} << 20;
    std::unique_ptr<char[]> a(new char[n]), b(new char[n]);
    std::memset(a.get(), 1, n);
    std::memset(b.get(), 2, n);
    double best = 0;
    for (int pass = 0; pass < 5; ++pass) {
        const auto t0 = Clock::now();
        std::memcpy(b.get(), a.get(), n);
        best = std::max(best, double(n) / seconds_since(t0));
        std::swap(a, b);
    }
    return best;
}

// The kernel path the plugin picks (its probe's driver text says it).
std::string session_isa() {
    apr_device_info info{};
    info.struct_size = sizeof info;
    CpuPlugin::get().desc->probe(&info);
    return info.driver;
}

uint64_t matrix_bytes(const apr_model_view& v) {
    uint64_t total = 0;  // what one decode step streams: every matrix but the embedding table
    for (uint32_t i = 0; i < v.n_tensors; ++i)
        if (std::string(v.tensors[i].name) != "token_embd.weight") total += v.tensors[i].n_bytes;
    return total;
}

void bench(const std::string& type_name, uint32_t type, double bandwidth) {
    const char* dir_override = std::getenv("APR_CPU_BENCH_DIR");
    const auto dir = dir_override ? std::filesystem::path(dir_override) : std::filesystem::path(APR_TEST_WORK_DIR) / "cpu_bench_models";
    std::filesystem::create_directories(dir);
    const auto path = dir / ("synthetic-1b-" + type_name + ".gguf");
    if (!std::filesystem::exists(path)) {
        apr::SyntheticModelSpec spec = apr::synthetic_preset("1b");
        spec.weight_type = type;
        const auto t0 = Clock::now();
        apr::write_synthetic_model((path.string() + ".tmp"), spec, 0);
        std::filesystem::rename(path.string() + ".tmp", path);
        std::cout << "[cpu-bench] wrote " << path << " in " << seconds_since(t0) << " s" << std::endl;
    }
    auto model = apr::Model::load(path.string());
    const apr_model_view& view = model->view();
    Session session(view, 512, 2);

    std::vector<int32_t> prompt(64);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(1 + (i * 7919) % (view.n_vocab - 1));
    session.step({prompt[0]}, 0, false);  // warm the page cache and the pool
    auto t0 = Clock::now();
    double c0 = process_cpu_seconds();
    session.step(prompt, 0, false);
    const double pp = double(prompt.size()) / seconds_since(t0);
    const double pp_cpu = (process_cpu_seconds() - c0) / double(prompt.size());

    const int n_decode = 32;
    t0 = Clock::now();
    c0 = process_cpu_seconds();
    for (int i = 0; i < n_decode; ++i) session.step({prompt[i % prompt.size()]}, static_cast<uint32_t>(prompt.size() + i), false);
    const double tg = n_decode / seconds_since(t0);
    const double tg_cpu = (process_cpu_seconds() - c0) / n_decode;
    const double streamed = double(matrix_bytes(view)) * tg;
    std::cout << "[cpu-bench] 1b " << type_name << " (" << session_isa() << "): pp64 " << pp << " t/s (" << pp_cpu * 1e3
              << " CPU ms/token), decode " << tg << " t/s (" << tg_cpu * 1e3 << " CPU ms/token), weights streamed "
              << streamed / 1e9 << " GB/s = " << 100.0 * streamed / bandwidth << "% of memcpy bandwidth" << std::endl;
    CHECK(tg > 0);
}

}  // namespace

TEST_CASE("cpu plugin throughput on 1B-shaped models", "[.cpu-bench]") {
    const double bw = copy_bandwidth();
    std::cout << "[cpu-bench] memcpy copy bandwidth " << bw / 1e9 << " GB/s copied (" << 2 * bw / 1e9
              << " GB/s read + write)" << std::endl;
    bench("Q4_0", APR_TYPE_Q4_0, bw);
    bench("Q8_0", APR_TYPE_Q8_0, bw);
}
