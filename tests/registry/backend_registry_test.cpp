// Loading and ordering real plugin files: the shipped backends and the fixture plugins.
#include <catch2/catch.hpp>

#include "registry/backend_registry.hpp"
#include "registry/descriptor_peek.hpp"
#include "registry/plugin_library.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using namespace apr;
using apr::contract::Stage;

namespace {

PluginFile fixture(const std::string& fault) {
    PluginFile f;
    f.name = fault;
    f.path = apr::test::fixture_dir() / fault / ("libapr_backend_" + fault + ".so");
    f.origin = "--plugin-dir";
    return f;
}

contract::Rejection load_and_probe_rejection(const std::string& fault) {
    try {
        auto lib = PluginLibrary::load(fixture(fault));
        lib->probe();
    } catch (const RejectionError& e) {
        return e.rejection;
    }
    FAIL("fixture " << fault << " was not rejected");
    return {};
}

}  // namespace

TEST_CASE("registry: descriptor fields are read from the file without loading it", "[registry]") {
    std::string error;
    auto cpu = peek_descriptor(apr::test::backend_dir() / "libapr_backend_cpu.so", error);
    REQUIRE(cpu);
    REQUIRE(cpu->abi_version == APR_BACKEND_ABI_VERSION);
    REQUIRE(cpu->struct_size == sizeof(apr_backend_desc));
    REQUIRE(cpu->priority == 100);
    REQUIRE(cpu->flags == APR_BACKEND_FLAG_CPU);

    auto wrong = peek_descriptor(fixture("wrong_abi_version").path, error);
    REQUIRE(wrong);
    REQUIRE(wrong->abi_version == APR_BACKEND_ABI_VERSION + 41);

    auto gpu = peek_descriptor(fixture("gpu_marker").path, error);
    REQUIRE(gpu);
    REQUIRE(gpu->flags == APR_BACKEND_FLAG_GPU);

    REQUIRE_FALSE(peek_descriptor(fixture("no_descriptor").path, error));
    REQUIRE(error.find("apr_backend_descriptor") != std::string::npos);
}

TEST_CASE("registry: each fixture is rejected at its stage with its reason", "[registry]") {
    struct Case {
        const char* fault;
        Stage stage;
        const char* reason_part;
    };
    const Case cases[] = {
        {"no_descriptor", Stage::abi, "no exported symbol 'apr_backend_descriptor'"},
        {"no_step", Stage::abi, "no exported symbol 'apr_backend_step'"},
        {"unresolved", Stage::load, "apr_fixture_symbol_that_does_not_exist"},
        {"wrong_abi_version", Stage::abi, "ABI version 42, this core speaks 1"},
        {"struct_too_small", Stage::abi, "struct_size"},
        {"name_mismatch", Stage::abi, "descriptor name 'someone_else' differs from the file's backend name 'name_mismatch'"},
        {"probe_no_device", Stage::probe, "APR_ERR_NO_DEVICE: fixture: no device here"},
    };
    for (const auto& c : cases) {
        INFO(c.fault);
        auto r = load_and_probe_rejection(c.fault);
        CHECK(r.backend == c.fault);
        CHECK(r.stage == c.stage);
        CHECK_THAT(r.reason, Catch::Contains(c.reason_part));
    }
}

TEST_CASE("registry: an exception thrown inside a plugin comes out as a status, never through the core", "[registry]") {
    auto lib = PluginLibrary::load(fixture("throws"));
    REQUIRE_NOTHROW(lib->probe());
    apr_model_view view{};
    view.struct_size = sizeof view;
    apr_session_config config{sizeof(apr_session_config), 16, 1};
    try {
        lib->open(view, config);
        FAIL("open did not fail");
    } catch (const RejectionError& e) {
        REQUIRE(e.rejection.stage == Stage::open);
        REQUIRE_THAT(e.rejection.reason, Catch::Contains("a C++ exception crossed the plugin ABI: fixture: thrown from open"));
    }
}

TEST_CASE("registry: open refusals and step errors carry the plugin's own reason", "[registry]") {
    apr_model_view view{};
    view.struct_size = sizeof view;
    view.n_vocab = 8;
    apr_session_config config{sizeof(apr_session_config), 16, 1};
    try {
        PluginLibrary::load(fixture("open_refuses"))->open(view, config);
        FAIL("open did not fail");
    } catch (const RejectionError& e) {
        REQUIRE(e.rejection.stage == Stage::open);
        REQUIRE(e.rejection.reason == "APR_ERR_UNSUPPORTED: fixture: this model is refused on purpose");
    }
    auto session = PluginLibrary::load(fixture("step_fails"))->open(view, config);
    int32_t token = 1;
    float logits[8];
    try {
        session->step(&token, 1, 0, false, logits);
        FAIL("step did not fail");
    } catch (const RejectionError& e) {
        REQUIRE(e.rejection.stage == Stage::step);
        REQUIRE(e.rejection.reason == "APR_ERR_DEVICE_LOST at position 0: fixture: step fails on purpose at position 0");
    }
}

TEST_CASE("registry: order is --backend's when given, else descriptor priority - --no-gpu drops GPU files", "[registry]") {
    std::vector<PluginFile> files = {fixture("gpu_marker"), fixture("open_refuses")};
    PluginFile cpu;
    cpu.name = "cpu";
    cpu.path = apr::test::backend_dir() / "libapr_backend_cpu.so";
    cpu.origin = "install";
    files.push_back(cpu);
    BackendRegistry registry(files);

    auto names = [](const std::vector<Candidate>& cs) {
        std::vector<std::string> n;
        for (const auto& c : cs) n.push_back(c.file.name);
        return n;
    };
    std::vector<contract::Rejection> unavailable;
    std::vector<std::string> skipped;
    // Fixtures have priority 1000 and sort by name among equals; cpu has 100.
    REQUIRE(names(registry.order({}, unavailable, skipped)) ==
            std::vector<std::string>{"gpu_marker", "open_refuses", "cpu"});
    REQUIRE(names(registry.order({{"cpu", "gpu_marker"}, false}, unavailable, skipped)) ==
            std::vector<std::string>{"cpu", "gpu_marker"});
    REQUIRE(names(registry.order({{}, true}, unavailable, skipped)) == std::vector<std::string>{"open_refuses", "cpu"});
    REQUIRE(skipped == std::vector<std::string>{"gpu_marker"});
    REQUIRE(unavailable.empty());
    REQUIRE(names(registry.order({{"nosuch", "cpu"}, false}, unavailable, skipped)) == std::vector<std::string>{"cpu"});
    REQUIRE(unavailable.size() == 1);
    REQUIRE(unavailable[0].backend == "nosuch");
    REQUIRE(unavailable[0].stage == Stage::load);
}

TEST_CASE("registry: --backend lists are parsed strictly", "[registry]") {
    REQUIRE(parse_backend_list("cuda") == std::vector<std::string>{"cuda"});
    REQUIRE(parse_backend_list("cuda, vulkan,cpu") == std::vector<std::string>{"cuda", "vulkan", "cpu"});
    REQUIRE(parse_backend_list("cpu,cpu") == std::vector<std::string>{"cpu"});
    REQUIRE_THROWS_AS(parse_backend_list("cuda,,cpu"), std::invalid_argument);
    REQUIRE_THROWS_AS(parse_backend_list(""), std::invalid_argument);
}
