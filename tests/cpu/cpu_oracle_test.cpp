// The CPU plugin against llama.cpp's logits for the oracle models (../shared/testdata/oracle):
// the 12 oracle tokens as one prefill with all logits, and again as 12 single-token decode
// steps, on every kernel path this CPU has. The plugin converts activations the way ggml does
// (Q8_0 / Q8_K / fp16 rounding), so it should sit much closer to llama.cpp than the thresholds.
#include <catch2/catch.hpp>

#include <filesystem>

#include "cpu/cpu_plugin_support.hpp"
#include "model/model.hpp"
#include "support/oracle_files.hpp"
#include "support/skip.hpp"
#include "support/testdata.hpp"

namespace {

using apr::test::read_oracle_tokens;
using apr::test::read_floats;

using namespace apr::test::cpu;

void check_oracle(const std::string& name, Tolerance tol) {
    APR_SKIP_TEST_UNLESS(apr::test::have_testdata(), apr::test::no_testdata_reason());
    const auto dir = apr::test::testdata_dir() / "oracle";
    APR_SKIP_TEST_UNLESS(std::filesystem::exists(dir / (name + ".gguf")), "oracle model " + name + " not found in " + dir.string());

    const std::vector<int32_t> tokens = read_oracle_tokens(dir / (name + ".json"));
    const std::vector<float> expected = read_floats(dir / (name + ".logits.bin"));
    auto model = apr::Model::load((dir / (name + ".gguf")).string());
    const apr_model_view& view = model->view();
    const size_t n_vocab = view.n_vocab;
    REQUIRE(tokens.size() == 12);
    REQUIRE(expected.size() == tokens.size() * n_vocab);

    for (const std::string& isa : available_isas()) {
        ScopedIsa scoped(isa);
        Session session(view, 256);
        Agreement prefill, decode;
        {
            const std::vector<float> logits = session.step(tokens, 0, /*all=*/true);
            for (size_t p = 0; p < tokens.size(); ++p) {
                CAPTURE(name, isa, p);
                compare_row(&logits[p * n_vocab], &expected[p * n_vocab], n_vocab, tol, prefill);
            }
        }
        for (size_t p = 0; p < tokens.size(); ++p) {  // rewinds to 0 first: pos 0 < cached 12
            CAPTURE(name, isa, p);
            const std::vector<float> logits = session.step({tokens[p]}, static_cast<uint32_t>(p), false);
            compare_row(logits.data(), &expected[p * n_vocab], n_vocab, tol, decode);
        }
        print_agreement(name + " [" + isa + "] prefill", prefill);
        print_agreement(name + " [" + isa + "] decode", decode);
    }
}

}  // namespace

TEST_CASE("cpu plugin matches llama.cpp: tiny-llama F16", "[cpu][oracle]") { check_oracle("tiny-llama-F16", {0.9999, 5e-2}); }
TEST_CASE("cpu plugin matches llama.cpp: tiny-llama Q8_0", "[cpu][oracle]") { check_oracle("tiny-llama-Q8_0", {0.999, 5e-2}); }
TEST_CASE("cpu plugin matches llama.cpp: tiny-llama Q4_0", "[cpu][oracle]") { check_oracle("tiny-llama-Q4_0", {0.999, 5e-2}); }
TEST_CASE("cpu plugin matches llama.cpp: tiny-llama Q4_K_M", "[cpu][oracle]") { check_oracle("tiny-llama-Q4_K_M", {0.999, 5e-2}); }
TEST_CASE("cpu plugin matches llama.cpp: tiny-llama Q6_K", "[cpu][oracle]") { check_oracle("tiny-llama-Q6_K", {0.999, 5e-2}); }
