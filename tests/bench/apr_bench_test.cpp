// apr-bench end to end through the real program: its three output formats parse and hold
// exactly one row per test and backend, --make-model writes a loadable model, bad flags get a
// one-line error naming the flag, a rejected backend gets its tagged line and no row, and
// --gate-cost prints its figures. No timing assertions: the figures depend on the machine.
#include <catch2/catch.hpp>

// Boost 1.74's property_tree pulls in the old global bind placeholders; say we know.
#define BOOST_BIND_GLOBAL_PLACEHOLDERS
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>

#include <map>
#include <set>
#include <sstream>

#include "model/model.hpp"
#include "support/models.hpp"
#include "support/process.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using apr::test::lines_of;
using apr::test::ProcessResult;
using apr::test::run_process;

namespace {

const std::string kTag = "[apr-cpu-vs-gpu-output-parity-v1] ";

std::string apr_bench() { return (apr::test::bin_dir() / "apr-bench").string(); }

ProcessResult run_bench(std::vector<std::string> args, const std::string& test) {
    args.insert(args.begin(), apr_bench());
    return run_process(args, {{"XDG_CACHE_HOME", apr::test::scratch_dir(test + "_cache").string()},
                              {"APR_PLUGIN_PATH", ""},
                              {"APR_BACKEND", ""},
                              {"APR_SKIP_PARITY_GATE", ""}});
}

std::vector<std::string> split(const std::string& line, char sep) {
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream in(line);
    while (std::getline(in, cell, sep)) {
        cell.erase(0, cell.find_first_not_of(' '));
        cell.erase(cell.find_last_not_of(' ') + 1);
        cells.push_back(cell);
    }
    return cells;
}

// (backend, test) -> how many rows, from the markdown table; every row has the header's columns.
std::map<std::pair<std::string, std::string>, int> md_rows(const std::string& out) {
    std::vector<std::string> header;
    std::map<std::pair<std::string, std::string>, int> rows;
    for (const std::string& line : lines_of(out)) {
        if (line.rfind("| ", 0) != 0) continue;
        auto cells = split(line.substr(2, line.size() - 4), '|');  // without the outer "| " and " |"
        if (header.empty()) {
            header = cells;
            continue;
        }
        if (cells[0].rfind("---", 0) == 0) continue;
        REQUIRE(cells.size() == header.size());
        const double tps = std::stod(cells[8]);  // "123.45 ± 1.23"
        CHECK(tps > 0);
        ++rows[{cells[4], cells[7]}];
    }
    REQUIRE(header.size() == 10);
    CHECK(header[0] == "model");
    CHECK(header[7] == "test");
    CHECK(header[8] == "t/s");
    return rows;
}

std::map<std::pair<std::string, std::string>, int> json_rows(const std::string& out,
                                                          const std::string& weight_type = "F32") {
    boost::property_tree::ptree root;
    std::istringstream in(out);
    REQUIRE_NOTHROW(boost::property_tree::read_json(in, root));
    CHECK(std::stod(root.get<std::string>("host_bandwidth.read_bytes_per_s")) > 0);
    std::map<std::pair<std::string, std::string>, int> rows;
    for (const auto& [key, row] : root.get_child("rows")) {
        CHECK(std::stod(row.get<std::string>("tokens_per_s")) > 0);
        CHECK(row.get<std::string>("weight_type") == weight_type);
        const bool tg = row.get<std::string>("kind") == "tg";
        const bool gpu = row.get<std::string>("gpu") == "true";
        // The bandwidth fraction: on every generation row, against the host's copy rate for a CPU
        // backend and the device's (the plugin's measure_copy_rate) for a GPU backend.
        CHECK(row.get<std::string>("copy_rate_source") == (gpu ? "device" : "host"));
        CHECK(std::stod(row.get<std::string>("copy_rate_bytes_per_s")) > 0);
        CHECK((row.get<std::string>("bandwidth_fraction") != "null") == tg);
        if (tg) {
            const double fraction = std::stod(row.get<std::string>("bandwidth_fraction"));
            const double weight_bytes = std::stod(row.get<std::string>("weight_read_bytes_per_s"));
            CHECK(fraction > 0);
            CHECK(fraction == Approx(weight_bytes / std::stod(row.get<std::string>("copy_rate_bytes_per_s"))));
        }
        ++rows[{row.get<std::string>("backend"), row.get<std::string>("test")}];
    }
    return rows;
}

// The fields of one CSV line (RFC 4180 quoting: a device text holds commas).
std::vector<std::string> csv_cells(const std::string& line) {
    std::vector<std::string> cells(1);
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
            cells.back() += '"';
            ++i;
        } else if (c == '"') {
            quoted = !quoted;
        } else if (c == ',' && !quoted) {
            cells.emplace_back();
        } else {
            cells.back() += c;
        }
    }
    return cells;
}

std::map<std::pair<std::string, std::string>, int> csv_rows(const std::string& out) {
    auto lines = lines_of(out);
    REQUIRE(!lines.empty());
    auto header = csv_cells(lines[0]);
    REQUIRE(header.size() == 19);
    CHECK(header[4] == "backend");
    CHECK(header[7] == "test");
    CHECK(header[10] == "tokens_per_s");
    std::map<std::pair<std::string, std::string>, int> rows;
    for (size_t i = 1; i < lines.size(); ++i) {
        if (lines[i].empty()) continue;
        auto cells = csv_cells(lines[i]);
        INFO(lines[i]);
        REQUIRE(cells.size() == header.size());
        CHECK(std::stod(cells[10]) > 0);
        ++rows[{cells[4], cells[7]}];
    }
    return rows;
}

std::vector<std::string> backends_under_test() {
    std::vector<std::string> backends = {"cpu"};
#if APR_TEST_WITH_VULKAN
    backends.push_back("vulkan");
#endif
    return backends;
}

std::string join(const std::vector<std::string>& names) {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : ",") + n;
    return s;
}

// Exactly one row per (backend, test), and nothing else.
void check_one_row_each(const std::map<std::pair<std::string, std::string>, int>& rows,
                        const std::vector<std::string>& backends, const std::vector<std::string>& tests) {
    std::map<std::pair<std::string, std::string>, int> expected;
    for (const auto& b : backends)
        for (const auto& t : tests) expected[{b, t}] = 1;
    CHECK(rows == expected);
}

void check_format(const std::string& format) {
    const auto backends = backends_under_test();
    auto r = run_bench({"-m", apr::test::tiny_model().string(), "-p", "16", "-n", "8", "-r", "2", "-t", "2",
                        "--backend", join(backends), "-o", format},
                       "bench_" + format);
    INFO(r.err);
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
    for (const auto& b : backends) CHECK(r.err.find("Backend: " + b + " (") != std::string::npos);
    const std::vector<std::string> tests = {"pp16", "tg8"};
    if (format == "md") check_one_row_each(md_rows(r.out), backends, tests);
    if (format == "json") check_one_row_each(json_rows(r.out), backends, tests);
    if (format == "csv") check_one_row_each(csv_rows(r.out), backends, tests);
}

}  // namespace

TEST_CASE("apr-bench -o md prints one table row per test and backend", "[bench]") { check_format("md"); }
TEST_CASE("apr-bench -o json parses and has one row per test and backend", "[bench]") { check_format("json"); }
TEST_CASE("apr-bench -o csv has one line per test and backend", "[bench]") { check_format("csv"); }

TEST_CASE("apr-bench comma lists and -d give one row per size and depth", "[bench]") {
    auto r = run_bench({"-m", apr::test::tiny_model().string(), "-p", "8,16", "-n", "4", "-d", "0,16", "-r", "1", "-t",
                        "2", "--backend", "cpu", "-o", "csv"},
                       "bench_lists");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    check_one_row_each(csv_rows(r.out), {"cpu"}, {"pp8", "pp16", "tg4", "pp8 @ d16", "pp16 @ d16", "tg4 @ d16"});
}

TEST_CASE("apr-bench -t 1,2 gives the CPU backend's rows once per thread count", "[bench]") {
    auto r = run_bench({"-m", apr::test::tiny_model().string(), "-p", "8", "-n", "4", "-r", "1", "-t", "1,2",
                        "--backend", "cpu", "-o", "csv"},
                       "bench_threads");
    INFO(r.err);
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
    std::map<std::string, int> per_threads;
    const auto lines = lines_of(r.out);
    for (size_t i = 1; i < lines.size(); ++i)
        if (!lines[i].empty()) ++per_threads[csv_cells(lines[i])[6]];  // the threads column
    CHECK(per_threads == std::map<std::string, int>{{"1", 2}, {"2", 2}});
    auto bad = run_bench({"-m", apr::test::tiny_model().string(), "-t", "2,x"}, "bench_threads_bad");
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("-t/--threads: 'x' is not a count") != std::string::npos);
}

TEST_CASE("apr-bench md states the bandwidth convention in its header", "[bench]") {
    auto r = run_bench({"-m", apr::test::tiny_model().string(), "-p", "0", "-n", "4", "-r", "1", "-t", "2", "--backend",
                        "cpu"},
                       "bench_header");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.rfind("host memory bandwidth: ", 0) == 0);
    CHECK(r.out.find("GB/s read (bytes a memcpy reads per second") != std::string::npos);
    // The tg row of a CPU backend carries its fraction.
    CHECK(r.out.find("GB/s = ") != std::string::npos);
}

TEST_CASE("apr-bench --make-model writes a model that loads and benchmarks", "[bench]") {
    const fs::path path = apr::test::scratch_dir("bench_make_model") / "tiny_q8_0.gguf";
    fs::remove(path);
    auto made = run_bench({"--make-model", "tiny:q8_0", path.string()}, "bench_make_model");
    INFO(made.err);
    REQUIRE(made.exit_code == 0);
    std::unique_ptr<apr::Model> model;
    REQUIRE_NOTHROW(model = apr::Model::load(path.string()));
    bool q8 = false;
    for (uint32_t i = 0; i < model->view().n_tensors; ++i)
        q8 |= std::string(model->view().tensors[i].name) == "blk.0.attn_q.weight" &&
              model->view().tensors[i].type == APR_TYPE_Q8_0;
    CHECK(q8);
    auto r = run_bench({"-m", path.string(), "-p", "8", "-n", "4", "-r", "1", "-t", "2", "--backend", "cpu", "-o",
                        "json"},
                       "bench_make_model");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    check_one_row_each(json_rows(r.out, "Q8_0"), {"cpu"}, {"pp8", "tg4"});
}

TEST_CASE("apr-bench bad flags get one line naming the flag and exit 2", "[bench]") {
    const std::string model = apr::test::tiny_model().string();
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"-m", model, "-o", "xml"}, "-o/--output"},
        {{"-m", model, "-p", "12x"}, "-p/--n-prompt"},
        {{"-m", model, "-n", "-3"}, "-n/--n-gen"},
        {{"-m", model, "-d", ""}, "-d/--n-depth"},
        {{"-m", model, "-r", "0"}, "-r/--repetitions"},
        {{"-m", model, "-t", "5000"}, "-t/--threads"},
        {{"-m", model, "--bogus"}, "--bogus"},
        {{"-p", "16"}, "-m/--model"},
        {{"-m", model, "--backend", "cpu,,vulkan"}, "--backend"},
        {{"-m", model, "--parity-threshold", "2"}, "--parity-threshold"},
        {{"--make-model", "huge:q4_0", "/tmp/x.gguf"}, "--make-model"},
        {{"--make-model", "tiny:q9_9", "/tmp/x.gguf"}, "--make-model"},
        {{"--make-model", "tiny:q8_0"}, "--make-model"},
    };
    for (const auto& [args, flag] : cases) {
        auto r = run_bench(args, "bench_bad_flags");
        INFO(flag << ": " << r.err);
        CHECK(r.exit_code == 2);
        CHECK(r.out.empty());
        auto lines = lines_of(r.err);
        REQUIRE(lines.size() == 1);
        CHECK(lines[0].rfind("apr-bench: error: ", 0) == 0);
        CHECK(lines[0].find(flag) != std::string::npos);
    }
}

TEST_CASE("apr-bench prints a rejected backend's tagged line and gives it no row", "[bench]") {
    auto r = run_bench({"-m", apr::test::tiny_model().string(), "-p", "16", "-n", "8", "-r", "1", "-t", "2",
                        "--plugin-dir", (apr::test::fixture_dir() / "open_refuses").string(), "--backend",
                        "open_refuses,cpu", "-o", "csv"},
                       "bench_rejected");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    bool tagged = false;
    for (const auto& line : lines_of(r.err))
        tagged |= line.rfind(kTag + "open_refuses path rejected, attempting fallback: open: ", 0) == 0;
    CHECK(tagged);
    check_one_row_each(csv_rows(r.out), {"cpu"}, {"pp16", "tg8"});
}

TEST_CASE("apr-bench exits 1 when no backend passes", "[bench]") {
    auto r = run_bench({"-m", apr::test::tiny_model().string(), "-p", "16", "-n", "8", "-r", "1", "--plugin-dir",
                        (apr::test::fixture_dir() / "open_refuses").string(), "--backend", "open_refuses"},
                       "bench_none");
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(r.err.find(kTag + "open_refuses path rejected") != std::string::npos);
}

TEST_CASE("apr-bench --gate-cost prints load, gate and decode-step figures per backend", "[bench]") {
    const auto backends = backends_under_test();
    auto r = run_bench({"-m", apr::test::tiny_model().string(), "--gate-cost", "-t", "2", "--backend", join(backends)},
                       "bench_gate_cost");
    INFO(r.err);
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
    std::set<std::string> seen;
    auto figure = [](const std::string& line) { return std::stod(line.substr(line.find(':') + 1)); };
    for (const auto& line : lines_of(r.out)) {
        if (line.rfind("gate cost: ", 0) == 0) seen.insert(split(line.substr(11), ' ')[0]);
        if (line.find("model load:") != std::string::npos) CHECK(figure(line) > 0);
        if (line.find("  gate:") == 0) {
            CHECK(figure(line) > 0);
            CHECK(line.find("reference") != std::string::npos);
            CHECK(line.find("backend") != std::string::npos);
        }
        if (line.find("decode step:") != std::string::npos) CHECK(figure(line) > 0);
        if (line.find("gate / decode step:") != std::string::npos) CHECK(figure(line) > 0);
    }
    CHECK(seen == std::set<std::string>(backends.begin(), backends.end()));
}
