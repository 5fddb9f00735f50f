// The Vulkan plugin against llama.cpp's logits for the oracle models (../shared/testdata/oracle):
// the 12 oracle tokens as one prefill with all logits, compared at every position: cosine, max
// abs difference, and top-1 (equal wherever llama.cpp's top-1/top-2 margin is >= 0.01, else
// each top-1 among the other's top two).
#include <catch2/catch.hpp>

#include <iomanip>
#include <iostream>
#include <utility>
#include <vector>

#include "model/model.hpp"
#include "support/logit_rows.hpp"
#include "support/oracle_files.hpp"
#include "support/skip.hpp"
#include "support/testdata.hpp"
#include "vulkan/vulkan_plugin.hpp"

namespace {

using apr::test::read_oracle_tokens;
using apr::test::read_floats;
using apr::test::top2;

void check_oracle(const std::string& name, double min_cosine, double max_abs) {
    APR_SKIP_TEST_UNLESS(apr::test::have_testdata(), apr::test::no_testdata_reason());
    const auto dir = apr::test::testdata_dir() / "oracle";
    APR_SKIP_TEST_UNLESS(std::filesystem::exists(dir / (name + ".gguf")), "oracle model " + name + " not found");
    apr::test::VulkanPlugin plugin;
    std::string why;
    APR_SKIP_TEST_UNLESS(plugin.device_present(why), why);

    const auto tokens = read_oracle_tokens(dir / (name + ".json"));
    const auto expected = read_floats(dir / (name + ".logits.bin"));
    auto model = apr::Model::load((dir / (name + ".gguf")).string());
    const size_t n_vocab = model->view().n_vocab;
    REQUIRE(expected.size() == tokens.size() * n_vocab);

    apr::test::VulkanSession session(plugin, model->view(), 256);
    INFO(session.open_error());
    REQUIRE(session.open_status() == APR_OK);
    std::vector<float> logits(tokens.size() * n_vocab);
    REQUIRE(plugin.step(session.get(), tokens.data(), uint32_t(tokens.size()), 0, APR_STEP_LOGITS_ALL, logits.data()) ==
            APR_OK);

    double worst_cos = 1.0, worst_diff = 0.0;
    size_t argmax_equal = 0;
    for (size_t p = 0; p < tokens.size(); ++p) {
        const float* ours = &logits[p * n_vocab];
        const float* theirs = &expected[p * n_vocab];
        auto d = apr::test::compare_rows(ours, theirs, n_vocab);
        const auto [e1, e2] = top2(theirs, n_vocab);
        const auto [o1, o2] = top2(ours, n_vocab);
        const double margin = double(theirs[e1]) - theirs[e2];
        CAPTURE(name, p, d.cosine, d.max_abs, e1, e2, o1, o2, margin);
        CHECK(d.finite);
        CHECK(d.cosine >= min_cosine);
        CHECK(d.max_abs <= max_abs);
        if (margin >= 0.01) {
            CHECK(o1 == e1);
        } else {
            CHECK((o1 == e1 || o1 == e2));
            CHECK((e1 == o1 || e1 == o2));
        }
        argmax_equal += o1 == e1 ? 1 : 0;
        worst_cos = std::min(worst_cos, d.cosine);
        worst_diff = std::max(worst_diff, d.max_abs);
    }
    std::cout << "[vulkan] " << name << " vs llama.cpp: worst cosine " << std::setprecision(8) << worst_cos
              << ", max |diff| " << std::setprecision(3) << worst_diff << ", argmax equal " << argmax_equal << "/"
              << tokens.size() << std::endl;
}

}  // namespace

TEST_CASE("vulkan matches llama.cpp: tiny-llama F16", "[vulkan][oracle]") { check_oracle("tiny-llama-F16", 0.9999, 5e-2); }
TEST_CASE("vulkan matches llama.cpp: tiny-llama Q8_0", "[vulkan][oracle]") { check_oracle("tiny-llama-Q8_0", 0.999, 5e-2); }
TEST_CASE("vulkan matches llama.cpp: tiny-llama Q4_0", "[vulkan][oracle]") { check_oracle("tiny-llama-Q4_0", 0.999, 5e-2); }
TEST_CASE("vulkan matches llama.cpp: tiny-llama Q4_K_M", "[vulkan][oracle]") {
    check_oracle("tiny-llama-Q4_K_M", 0.999, 5e-2);
}
TEST_CASE("vulkan matches llama.cpp: tiny-llama Q6_K", "[vulkan][oracle]") { check_oracle("tiny-llama-Q6_K", 0.999, 5e-2); }
