// apr-bench's results: one row per backend and test, in the columns users know from
// llama-bench (model | size | params | backend | threads | test | t/s), plus the weight type,
// the device and the generation's memory-bandwidth fraction; rendered as markdown, JSON or CSV.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bench/host_bandwidth.hpp"
#include "bench/model_footprint.hpp"
#include "bench/sample_stats.hpp"

namespace apr::bench {

// Why a GPU backend's row has no bandwidth fraction: the plugin offers no measure_copy_rate
// (an optional descriptor field) or its measurement failed.
inline constexpr const char* kDeviceBandwidthNa = "n/a (the plugin measured no device copy rate)";

struct BenchRow {
    ModelFootprint model;
    std::string backend;
    std::string device;
    bool gpu = false;
    unsigned threads = 0;
    std::string test;        // "pp64", "tg32 @ d512"
    bool generation = false;
    uint32_t n_tokens = 0;
    uint32_t depth = 0;
    std::vector<double> samples;  // t/s per repetition
    SampleStats tokens_per_s;

    // GPU backends: the device's copy rate, (bytes read + written) per second, measured by the
    // plugin on the same session right after its tests (BackendSession::measure_copy_rate).
    std::optional<double> device_copy_bytes_per_s;

    // Generation rows: weight bytes read per second (decode_read_bytes x t/s) and that as a
    // fraction of the copy rate: the host's for CPU backends, the device's for GPU backends.
    // Empty when that copy rate is unknown.
    std::optional<double> weight_read_bytes_per_s;
    std::optional<double> bandwidth_fraction;
};

// The copy rate a row's fraction divides by (read + write bytes/s), and where it comes from
// ("host" or "device"); empty when there is none.
std::optional<double> copy_rate_of(const BenchRow& row, const HostBandwidth& host);
const char* copy_rate_source(const BenchRow& row);

// Fills the bandwidth fields of a row from its figures.
void attach_bandwidth(BenchRow& row, const HostBandwidth& host);

struct BenchReport {
    HostBandwidth host;
    std::vector<BenchRow> rows;
};

enum class OutputFormat { md, json, csv };

// Markdown: a line stating the bandwidth convention and the measured figure, then the table.
std::string render_md(const BenchReport& report);
// JSON: {"host_bandwidth": {...}, "rows": [...]}, every figure in plain units (bytes, t/s).
std::string render_json(const BenchReport& report);
// CSV: a header line, then one line per row; the host bandwidth repeats on every row.
std::string render_csv(const BenchReport& report);
std::string render(const BenchReport& report, OutputFormat format);

}  // namespace apr::bench
