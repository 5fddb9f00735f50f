// The CPU plugin's ABI behaviour: descriptor, probe, errors from open (naming the tensor, type
// or parameter) and from step (contract violations leave the session usable), close(NULL),
// forced kernel paths, and results that do not depend on the thread count.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <string>

#include "cpu/cpu_plugin_support.hpp"
#include "model/model.hpp"
#include "model/synthetic_model.hpp"
#include "support/testdata.hpp"

namespace {

using namespace apr::test::cpu;

const apr_backend_desc& desc() { return cpu_plugin().desc(); }

// A small synthetic llama model, written once per test run.
const apr::Model& small_model() {
    static std::unique_ptr<apr::Model> model = [] {
        const auto dir = apr::test::scratch_dir("cpu_plugin_abi");
        apr::SyntheticModelSpec spec;
        spec.weight_type = APR_TYPE_Q4_0;
        const auto path = dir / "small-q4_0.gguf";
        apr::write_synthetic_model(path.string(), spec, 2);
        return apr::Model::load(path.string());
    }();
    return *model;
}

// A copy of a view's tensor table that a test may edit.
struct EditedView {
    explicit EditedView(const apr_model_view& v) : view(v), tensors(v.tensors, v.tensors + v.n_tensors) { sync(); }
    apr_tensor_view& tensor(const std::string& name) {
        for (auto& t : tensors)
            if (name == t.name) return t;
        throw std::runtime_error("no tensor " + name);
    }
    void remove(const std::string& name) {
        tensors.erase(std::remove_if(tensors.begin(), tensors.end(), [&](const apr_tensor_view& t) { return name == t.name; }),
                      tensors.end());
        sync();
    }
    void sync() {
        view.tensors = tensors.data();
        view.n_tensors = static_cast<uint32_t>(tensors.size());
    }
    apr_model_view view;
    std::vector<apr_tensor_view> tensors;
};

apr_session_config config(uint32_t n_ctx, uint32_t n_threads = 2) {
    apr_session_config c{};
    c.struct_size = sizeof c;
    c.n_ctx = n_ctx;
    c.n_threads = n_threads;
    return c;
}

// Opens `view`, expecting `status` and a last_error containing `needle`.
void expect_open_error(const apr_model_view& view, apr_status status, const std::string& needle) {
    const apr_session_config c = config(32);
    apr_session* s = reinterpret_cast<apr_session*>(0x1);
    CHECK(desc().open(&view, &c, &s) == status);
    CHECK(s == nullptr);
    const std::string error = desc().last_error();
    CAPTURE(error);
    CHECK(error.find(needle) != std::string::npos);
}

}  // namespace

TEST_CASE("cpu plugin descriptor and probe", "[cpu][abi]") {
    CHECK(desc().abi_version == APR_BACKEND_ABI_VERSION);
    CHECK(desc().struct_size == sizeof(apr_backend_desc));
    CHECK(std::string(desc().name) == "cpu");
    CHECK(std::string(desc().display_name) == "apr CPU backend");
    CHECK(desc().priority == 100);
    CHECK(desc().flags == APR_BACKEND_FLAG_CPU);

    apr_device_info info{};
    info.struct_size = sizeof info;
    REQUIRE(desc().probe(&info) == APR_OK);
    const std::string description = info.description;
    std::cout << "[cpu] probe: " << description << " / " << info.driver << std::endl;
    CHECK(description.rfind("x86-64 ", 0) == 0);
    // No thread count: the probe cannot know a session's; the core adds it per session.
    CHECK(description.find("thread") == std::string::npos);
    CHECK(std::strlen(info.driver) > 0);
    CHECK(info.memory_bytes > 0);

    // A smaller struct (an older core) gets nothing written past its struct_size.
    struct {
        apr_device_info info;
    } small{};
    std::memset(&small, 0x5a, sizeof small);
    small.info.struct_size = offsetof(apr_device_info, driver);
    REQUIRE(desc().probe(&small.info) == APR_OK);
    CHECK(static_cast<unsigned char>(small.info.driver[0]) == 0x5a);

    CHECK(desc().probe(nullptr) == APR_ERR_INVALID_ARGUMENT);
    desc().close(nullptr);  // accepted, does nothing
}

TEST_CASE("cpu plugin kernel path forced by APR_CPU_ISA", "[cpu][abi]") {
    {
        ScopedIsa isa("scalar");
        apr_device_info info{};
        info.struct_size = sizeof info;
        REQUIRE(desc().probe(&info) == APR_OK);
        CHECK(std::string(info.driver).find("scalar") != std::string::npos);
    }
    {
        ScopedIsa isa("sse9");
        apr_device_info info{};
        info.struct_size = sizeof info;
        CHECK(desc().probe(&info) == APR_ERR_NO_DEVICE);
        CHECK(std::string(desc().last_error()).find("sse9") != std::string::npos);
        const apr_session_config c = config(16);
        apr_session* s = nullptr;
        CHECK(desc().open(&small_model().view(), &c, &s) == APR_ERR_NO_DEVICE);
        CHECK(s == nullptr);
    }
    const std::vector<std::string> isas = available_isas();
    CHECK(isas.front() == "scalar");
    std::cout << "[cpu] kernel paths on this CPU:";
    for (const auto& i : isas) std::cout << " " << i;
    std::cout << std::endl;
}

TEST_CASE("cpu plugin open rejects what it cannot run, naming it", "[cpu][abi]") {
    const apr_model_view& base = small_model().view();
    {
        EditedView e(base);
        e.remove("blk.1.ffn_up.weight");
        expect_open_error(e.view, APR_ERR_UNSUPPORTED, "blk.1.ffn_up.weight");
    }
    {
        EditedView e(base);
        e.tensor("blk.0.attn_k.weight").type = 10;  // Q2_K: not supported
        expect_open_error(e.view, APR_ERR_UNSUPPORTED, "type 10");
    }
    {
        EditedView e(base);
        e.tensor("blk.0.attn_q.weight").ne[1] += 1;
        expect_open_error(e.view, APR_ERR_UNSUPPORTED, "blk.0.attn_q.weight");
    }
    {
        EditedView e(base);
        e.tensor("output_norm.weight").type = APR_TYPE_F16;
        expect_open_error(e.view, APR_ERR_UNSUPPORTED, "output_norm.weight");
    }
    {
        EditedView e(base);
        e.tensor("blk.0.ffn_down.weight").n_bytes -= 1;
        expect_open_error(e.view, APR_ERR_INVALID_ARGUMENT, "blk.0.ffn_down.weight");
    }
    {
        EditedView e(base);
        e.view.arch = 9;
        expect_open_error(e.view, APR_ERR_UNSUPPORTED, "architecture 9");
    }
    {
        EditedView e(base);
        e.view.n_head_kv = 3;
        expect_open_error(e.view, APR_ERR_UNSUPPORTED, "n_head_kv");
    }
    {
        EditedView e(base);
        e.view.arch = APR_ARCH_QWEN2;  // needs q/k/v biases the file does not have
        expect_open_error(e.view, APR_ERR_UNSUPPORTED, "blk.0.attn_q.bias");
    }
    const apr_session_config c = config(16);
    apr_session* s = nullptr;
    CHECK(desc().open(nullptr, &c, &s) == APR_ERR_INVALID_ARGUMENT);
    CHECK(desc().open(&base, nullptr, &s) == APR_ERR_INVALID_ARGUMENT);
    CHECK(desc().open(&base, &c, nullptr) == APR_ERR_INVALID_ARGUMENT);
    const apr_session_config zero = config(0);
    CHECK(desc().open(&base, &zero, &s) == APR_ERR_INVALID_ARGUMENT);
    CHECK(s == nullptr);
}

TEST_CASE("cpu plugin step rejects contract violations and stays usable", "[cpu][abi]") {
    const apr_model_view& view = small_model().view();
    Session session(view, 16);
    const auto step = cpu_plugin().step_fn();
    std::vector<float> logits(16 * view.n_vocab);
    const std::vector<int32_t> tokens = {1, 20, 30, 40};
    const std::vector<float> first = session.step(tokens, 0, false);

    auto expect_invalid = [&](apr_status st, const std::string& needle) {
        CHECK(st == APR_ERR_INVALID_ARGUMENT);
        const std::string error = desc().last_error();
        CAPTURE(error);
        CHECK(error.find(needle) != std::string::npos);
    };
    expect_invalid(step(nullptr, tokens.data(), 1, 4, 0, logits.data()), "session");
    expect_invalid(step(session.get(), nullptr, 1, 4, 0, logits.data()), "tokens");
    expect_invalid(step(session.get(), tokens.data(), 1, 4, 0, nullptr), "logits");
    expect_invalid(step(session.get(), tokens.data(), 0, 4, 0, logits.data()), "n_tokens");
    expect_invalid(step(session.get(), tokens.data(), 1, 5, 0, logits.data()), "past the cached length 4");
    const std::vector<int32_t> thirteen(13, 9);
    expect_invalid(step(session.get(), thirteen.data(), 13, 4, 0, logits.data()), "n_ctx 16");
    const int32_t bad[2] = {5, static_cast<int32_t>(view.n_vocab)};
    expect_invalid(step(session.get(), bad, 2, 4, 0, logits.data()), "outside the vocabulary");
    const int32_t negative = -1;
    expect_invalid(step(session.get(), &negative, 1, 4, 0, logits.data()), "outside the vocabulary");

    // Nothing above touched the cache: continuing at 4, and replaying 0..3, behave as before.
    CHECK_NOTHROW(session.step({50}, 4, false));
    const std::vector<float> again = session.step(tokens, 0, false);
    CHECK(again == first);
    // The last position of the context is usable; one past it is not.
    std::vector<int32_t> fill(12, 7);
    CHECK_NOTHROW(session.step(fill, 4, true));
    CHECK(step(session.get(), tokens.data(), 1, 16, 0, logits.data()) == APR_ERR_INVALID_ARGUMENT);
}

TEST_CASE("cpu plugin logits do not depend on the thread count or the batch split", "[cpu][abi]") {
    const apr_model_view& view = small_model().view();
    std::vector<int32_t> tokens(70);  // more than one internal batch
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 37 + 1) % view.n_vocab);
    Session one(view, 128, 1), three(view, 128, 3);
    const std::vector<float> a = one.step(tokens, 0, true);
    const std::vector<float> b = three.step(tokens, 0, true);
    CHECK(a == b);
    // Token by token, the same rows.
    const size_t n_vocab = view.n_vocab;
    for (size_t p = 0; p < tokens.size(); ++p) {
        const std::vector<float> row = three.step({tokens[p]}, static_cast<uint32_t>(p), false);
        CAPTURE(p);
        CHECK(std::equal(row.begin(), row.end(), a.begin() + static_cast<std::ptrdiff_t>(p * n_vocab)));
    }
}

TEST_CASE("cpu plugin rejects an unknown APR_CPU_KV_TYPE", "[cpu][abi]") {
    ScopedEnv kv("APR_CPU_KV_TYPE", "q8");
    expect_open_error(small_model().view(), APR_ERR_UNSUPPORTED, "APR_CPU_KV_TYPE='q8'");
}
