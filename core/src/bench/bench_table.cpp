#include "bench/bench_table.hpp"

#include <cstdio>
#include <sstream>

#include "text/json_string.hpp"

namespace apr::bench {

namespace {

std::string format(const char* fmt, double a) {
    char text[64];
    std::snprintf(text, sizeof text, fmt, a);
    return text;
}

std::string format(const char* fmt, double a, double b) {
    char text[64];
    std::snprintf(text, sizeof text, fmt, a, b);
    return text;
}


std::string json_number(double v) { return format("%.6g", v); }

// A CSV field, quoted when it holds a separator, a quote or a line break.
std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

// A markdown table cell: a '|' in a device text would split it.
std::string md_cell(std::string s) {
    for (char& c : s)
        if (c == '|') c = '/';
    return s;
}

std::string model_label(const ModelFootprint& m) { return m.arch + " " + params_label(m.params) + " " + m.weight_type; }

// The bandwidth cell of a markdown row.
std::string bandwidth_cell(const BenchRow& row) {
    if (!row.generation) return "-";
    if (!row.bandwidth_fraction) return row.gpu ? kDeviceBandwidthNa : "-";
    return format("%.2f GB/s = %.0f%%", *row.weight_read_bytes_per_s / 1e9, *row.bandwidth_fraction * 100);
}

std::string bandwidth_note(const BenchRow& row) {
    if (!row.generation) return "prompt test";
    if (!row.bandwidth_fraction) return row.gpu ? kDeviceBandwidthNa : "not measured";
    return "";
}

}  // namespace

std::optional<double> copy_rate_of(const BenchRow& row, const HostBandwidth& host) {
    if (row.gpu) return row.device_copy_bytes_per_s;
    if (host.read_write_bytes_per_s <= 0) return std::nullopt;
    return host.read_write_bytes_per_s;
}

const char* copy_rate_source(const BenchRow& row) { return row.gpu ? "device" : "host"; }

void attach_bandwidth(BenchRow& row, const HostBandwidth& host) {
    row.weight_read_bytes_per_s.reset();
    row.bandwidth_fraction.reset();
    // The denominator is the copy rate counting bytes read and written (issue #7's and
    // llama-bench users' convention): a decode step only reads, so a fraction near 100% means
    // it streams weights as fast as a copy moves data. The read-only half alone would be
    // exceeded by a good decode (it was: 122% on the 2-core CI machine).
    const std::optional<double> rate = copy_rate_of(row, host);
    if (!row.generation || !rate) return;
    row.weight_read_bytes_per_s = static_cast<double>(row.model.decode_read_bytes) * row.tokens_per_s.mean;
    row.bandwidth_fraction = *row.weight_read_bytes_per_s / *rate;
}

std::string render_md(const BenchReport& report) {
    std::ostringstream out;
    const HostBandwidth& h = report.host;
    out << "host memory bandwidth: " << format("%.2f", h.read_bytes_per_s / 1e9)
        << " GB/s read (bytes a memcpy reads per second; " << format("%.2f", h.read_write_bytes_per_s / 1e9)
        << " GB/s read+write), " << (h.buffer_bytes >> 20) << " MiB buffers, " << h.threads << " threads\n";
    // One line per GPU backend's device copy rate (the rows of a backend share it).
    std::string last_device;
    for (const BenchRow& r : report.rows) {
        if (!r.gpu || !r.device_copy_bytes_per_s || r.backend + r.device == last_device) continue;
        last_device = r.backend + r.device;
        out << md_cell(r.backend) << " device copy rate: " << format("%.1f", *r.device_copy_bytes_per_s / 1e9)
            << " GB/s read+write (device-to-device copy on " << md_cell(r.device) << ")\n";
    }
    out << "bw = weight bytes a decode step reads x t/s, and that as a fraction of the read+write copy rate above "
           "(the host's for CPU backends, the device's for GPU backends)\n\n";
    out << "| model | size | params | type | backend | device | threads | test | t/s | bw |\n";
    out << "| --- | ---: | ---: | --- | --- | --- | ---: | --- | ---: | ---: |\n";
    for (const BenchRow& r : report.rows) {
        out << "| " << model_label(r.model) << " | " << size_label(r.model.size_bytes) << " | "
            << params_label(r.model.params) << " | " << r.model.weight_type << " | " << md_cell(r.backend) << " | "
            << md_cell(r.device) << " | " << r.threads << " | " << r.test << " | "
            << format("%.2f ± %.2f", r.tokens_per_s.mean, r.tokens_per_s.stddev) << " | " << bandwidth_cell(r)
            << " |\n";
    }
    return out.str();
}

std::string render_json(const BenchReport& report) {
    std::ostringstream out;
    const HostBandwidth& h = report.host;
    out << "{\n  \"host_bandwidth\": {\"read_bytes_per_s\": " << json_number(h.read_bytes_per_s)
        << ", \"read_write_bytes_per_s\": " << json_number(h.read_write_bytes_per_s)
        << ", \"buffer_bytes\": " << h.buffer_bytes << ", \"threads\": " << h.threads
        << ", \"convention\": " << json_string("read: bytes a multi-threaded memcpy reads per second; read_write: read plus written, which bandwidth_fraction divides by")
        << "},\n  \"rows\": [";
    for (size_t i = 0; i < report.rows.size(); ++i) {
        const BenchRow& r = report.rows[i];
        out << (i ? ",\n" : "\n") << "    {\"model\": " << json_string(model_label(r.model))
            << ", \"arch\": " << json_string(r.model.arch) << ", \"size_bytes\": " << r.model.size_bytes
            << ", \"params\": " << r.model.params << ", \"weight_type\": " << json_string(r.model.weight_type)
            << ", \"decode_read_bytes\": " << r.model.decode_read_bytes << ", \"backend\": " << json_string(r.backend)
            << ", \"device\": " << json_string(r.device) << ", \"gpu\": " << (r.gpu ? "true" : "false")
            << ", \"threads\": " << r.threads << ", \"test\": " << json_string(r.test)
            << ", \"kind\": " << json_string(r.generation ? "tg" : "pp") << ", \"n_tokens\": " << r.n_tokens
            << ", \"depth\": " << r.depth << ", \"tokens_per_s\": " << json_number(r.tokens_per_s.mean)
            << ", \"tokens_per_s_stddev\": " << json_number(r.tokens_per_s.stddev) << ", \"samples\": [";
        for (size_t s = 0; s < r.samples.size(); ++s) out << (s ? ", " : "") << json_number(r.samples[s]);
        out << "], \"weight_read_bytes_per_s\": "
            << (r.weight_read_bytes_per_s ? json_number(*r.weight_read_bytes_per_s) : "null")
            << ", \"bandwidth_fraction\": " << (r.bandwidth_fraction ? json_number(*r.bandwidth_fraction) : "null");
        const std::optional<double> rate = copy_rate_of(r, report.host);
        out << ", \"copy_rate_bytes_per_s\": " << (rate ? json_number(*rate) : "null")
            << ", \"copy_rate_source\": " << json_string(copy_rate_source(r));
        if (!r.bandwidth_fraction) out << ", \"bandwidth_note\": " << json_string(bandwidth_note(r));
        out << "}";
    }
    out << "\n  ]\n}\n";
    return out.str();
}

std::string render_csv(const BenchReport& report) {
    std::ostringstream out;
    out << "model,size_bytes,params,weight_type,backend,device,threads,test,n_tokens,depth,tokens_per_s,"
           "tokens_per_s_stddev,decode_read_bytes,weight_read_bytes_per_s,host_read_bytes_per_s,copy_rate_bytes_per_s,"
           "copy_rate_source,bandwidth_fraction,bandwidth_note\n";
    for (const BenchRow& r : report.rows) {
        const std::optional<double> rate = copy_rate_of(r, report.host);
        out << csv_field(model_label(r.model)) << ',' << r.model.size_bytes << ',' << r.model.params << ','
            << csv_field(r.model.weight_type) << ',' << csv_field(r.backend) << ',' << csv_field(r.device) << ','
            << r.threads << ',' << csv_field(r.test) << ',' << r.n_tokens << ',' << r.depth << ','
            << json_number(r.tokens_per_s.mean) << ',' << json_number(r.tokens_per_s.stddev) << ','
            << r.model.decode_read_bytes << ','
            << (r.weight_read_bytes_per_s ? json_number(*r.weight_read_bytes_per_s) : "") << ','
            << json_number(report.host.read_bytes_per_s) << ',' << (rate ? json_number(*rate) : "") << ','
            << copy_rate_source(r) << ',' << (r.bandwidth_fraction ? json_number(*r.bandwidth_fraction) : "") << ',' << csv_field(bandwidth_note(r))
            << '\n';
    }
    return out.str();
}

std::string render(const BenchReport& report, OutputFormat format) {
    switch (format) {
        case OutputFormat::md: return render_md(report);
        case OutputFormat::json: return render_json(report);
        case OutputFormat::csv: return render_csv(report);
    }
    return {};
}

}  // namespace apr::bench
