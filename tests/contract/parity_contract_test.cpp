// Pins the exact shape of every line of the contract apr-cpu-vs-gpu-output-parity-v1.
#include <catch2/catch.hpp>

#include "contract/parity_contract.hpp"

using namespace apr::contract;

TEST_CASE("contract: the tag is apr-cpu-vs-gpu-output-parity-v1", "[contract]") {
    REQUIRE(kTag == "apr-cpu-vs-gpu-output-parity-v1");
}

TEST_CASE("contract: stage names are load, abi, probe, open, parity, step", "[contract]") {
    REQUIRE(stage_name(Stage::load) == "load");
    REQUIRE(stage_name(Stage::abi) == "abi");
    REQUIRE(stage_name(Stage::probe) == "probe");
    REQUIRE(stage_name(Stage::open) == "open");
    REQUIRE(stage_name(Stage::parity) == "parity");
    REQUIRE(stage_name(Stage::step) == "step");
}

TEST_CASE("contract: rejection line shape", "[contract]") {
    REQUIRE(rejection_line({"cuda", Stage::probe, "no driver"}) ==
            "[apr-cpu-vs-gpu-output-parity-v1] cuda path rejected, attempting fallback: probe: no driver");
    REQUIRE(forced_rejection_line({"cuda", Stage::open, "too big"}) ==
            "[apr-cpu-vs-gpu-output-parity-v1] cuda path rejected, no fallback (forced with --backend): open: too big");
}

TEST_CASE("contract: Backend line shape, without and with the gate's figures", "[contract]") {
    REQUIRE(backend_line("cpu", "x86-64 AVX2") == "Backend: cpu (x86-64 AVX2)");
    GateSummary g;
    g.min_cosine = 0.999981;
    g.top1_agree = 11;
    g.positions = 11;
    g.seconds = 0.414;
    REQUIRE(backend_line("vulkan", "NVIDIA H200, Vulkan 1.3", g) ==
            "Backend: vulkan (NVIDIA H200, Vulkan 1.3) \u2014 parity cos=0.99998 top1 11/11, gate 0.41 s");
    g.from_cache = true;
    REQUIRE(backend_line("vulkan", "NVIDIA H200, Vulkan 1.3", g) ==
            "Backend: vulkan (NVIDIA H200, Vulkan 1.3) \u2014 parity cos=0.99998 top1 11/11, cached pass");
}

TEST_CASE("contract: override line shape", "[contract]") {
    REQUIRE(gate_skipped_line("cuda") == "override: parity gate skipped for cuda");
}

TEST_CASE("contract: nothing-passed lines list every rejection", "[contract]") {
    auto lines = nothing_passed_lines({{"cuda", Stage::probe, "no driver"}, {"cpu", Stage::open, "refused"}});
    REQUIRE(lines.size() == 3);
    REQUIRE(lines[0] == "error: no backend passed (2 rejected):");
    REQUIRE(lines[1] == "  cuda: probe: no driver");
    REQUIRE(lines[2] == "  cpu: open: refused");
}
