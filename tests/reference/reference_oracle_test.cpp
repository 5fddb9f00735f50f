// The reference forward against llama.cpp's logits for the oracle models in
// ../shared/testdata/oracle (README.md there explains the numerics): the 12 oracle tokens as
// one prefill with all logits, compared position by position.
//
// The reference rounds each matrix product's activations as llama.cpp does for the weight's
// type (reference_kernels.hpp: round_activation_for) and computes everything else exactly, so
// it must agree with llama.cpp's top-1 wherever its top1-top2 margin is >= 0.01 (and within the
// other side's top two elsewhere), and its error must be of the size an independent float64
// NumPy forward with the same emulation has against llama.cpp
// (crosscheck_numpy_f64.emulated_activation_conversion): at most twice its max abs diff, plus
// 1e-5 for float summation order. Emulation is not bit-exact: a value that sits on a rounding
// boundary can flip with a 1e-7 difference in summation order (the oracle README's F16/Q8_0 rows).
#include <catch2/catch.hpp>

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <vector>

#include "model/model.hpp"
#include "reference/reference_forward.hpp"
#include "support/logit_rows.hpp"
#include "support/oracle_files.hpp"
#include "support/skip.hpp"
#include "support/testdata.hpp"

namespace {

using apr::test::read_floats;
using apr::test::top2;

struct Tolerance {
    double min_cosine;
    double max_abs_diff;
};

struct OracleFacts {
    std::vector<int32_t> tokens;
    // The independent float64 NumPy forward without activation conversion, against llama.cpp.
    double numpy_max_abs_diff = 0, numpy_mean_abs_diff = 0;
    size_t numpy_argmax_agree = 0;
};

OracleFacts read_oracle_json(const std::filesystem::path& json_path) {
    boost::property_tree::ptree json;
    boost::property_tree::read_json(json_path.string(), json);
    OracleFacts facts;
    for (const auto& item : json.get_child("tokens")) facts.tokens.push_back(item.second.get_value<int32_t>());
    const auto& plain = json.get_child("crosscheck_numpy_f64.emulated_activation_conversion");
    facts.numpy_max_abs_diff = plain.get<double>("max_abs_diff");
    facts.numpy_mean_abs_diff = plain.get<double>("mean_abs_diff");
    facts.numpy_argmax_agree = plain.get<size_t>("argmax_agree");
    return facts;
}

void check_against_oracle(const std::string& name, Tolerance tol) {
    APR_SKIP_TEST_UNLESS(apr::test::have_testdata(), apr::test::no_testdata_reason());
    const auto dir = apr::test::testdata_dir() / "oracle";
    APR_SKIP_TEST_UNLESS(std::filesystem::exists(dir / (name + ".gguf")), "oracle model " + name + " not found in " +
                                                                               dir.string());

    const OracleFacts facts = read_oracle_json(dir / (name + ".json"));
    const auto& tokens = facts.tokens;
    const auto expected = read_floats(dir / (name + ".logits.bin"));
    auto model = apr::Model::load((dir / (name + ".gguf")).string());
    apr::ReferenceForward ref(model->view(), 256);
    const size_t n_vocab = ref.n_vocab();
    REQUIRE(tokens.size() == 12);
    REQUIRE(expected.size() == tokens.size() * n_vocab);

    std::vector<float> logits(tokens.size() * n_vocab);
    const auto start = std::chrono::steady_clock::now();
    ref.step(tokens.data(), static_cast<uint32_t>(tokens.size()), 0, true, logits.data());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    double worst_cosine = 1.0, worst_diff = 0.0, mean_diff = 0.0;
    size_t argmax_agree = 0, clear_margin_misses = 0;
    for (size_t p = 0; p < tokens.size(); ++p) {
        CAPTURE(name, p);
        const float* ours = &logits[p * n_vocab];
        const float* theirs = &expected[p * n_vocab];
        double dot = 0, n_ours = 0, n_theirs = 0, diff = 0;
        for (size_t i = 0; i < n_vocab; ++i) {
            REQUIRE(std::isfinite(ours[i]));
            dot += double(ours[i]) * theirs[i];
            n_ours += double(ours[i]) * ours[i];
            n_theirs += double(theirs[i]) * theirs[i];
            diff = std::max(diff, std::abs(double(ours[i]) - theirs[i]));
            mean_diff += std::abs(double(ours[i]) - theirs[i]);
        }
        const double cosine = dot / std::sqrt(n_ours * n_theirs);
        CAPTURE(cosine, diff);
        CHECK(cosine >= tol.min_cosine);
        CHECK(diff <= tol.max_abs_diff);
        worst_cosine = std::min(worst_cosine, cosine);
        worst_diff = std::max(worst_diff, diff);

        // Top-1: must agree where llama.cpp's top-2 are clearly apart; within a near-tie, each
        // side's argmax must be among the other's top two.
        const auto [t1, t2] = top2(theirs, n_vocab);
        const auto [o1, o2] = top2(ours, n_vocab);
        const double margin = double(theirs[t1]) - theirs[t2];
        CAPTURE(t1, t2, o1, o2, margin);
        if (o1 == t1) ++argmax_agree;
        if (o1 != t1 && margin >= 0.01) ++clear_margin_misses;
        CHECK((o1 == t1 || o1 == t2));
        CHECK((t1 == o1 || t1 == o2));
    }
    mean_diff /= double(logits.size());
    const size_t numpy_misses = tokens.size() - facts.numpy_argmax_agree;
    CAPTURE(clear_margin_misses, numpy_misses, facts.numpy_max_abs_diff, facts.numpy_mean_abs_diff);
    CHECK(clear_margin_misses == 0);
    CHECK(worst_diff <= 2.0 * facts.numpy_max_abs_diff + 1e-5);
    std::cout << "[reference] " << name << ": worst cosine " << std::setprecision(8) << worst_cosine
              << ", max |diff| " << std::setprecision(4) << worst_diff << " (numpy f64 " << facts.numpy_max_abs_diff
              << "), mean |diff| " << mean_diff << " (numpy f64 " << facts.numpy_mean_abs_diff << "), argmax agree "
              << argmax_agree << "/" << tokens.size() << " (numpy f64 " << facts.numpy_argmax_agree
              << "), prefill of " << tokens.size()
              << " tokens " << std::setprecision(3) << seconds << " s on " << ref.n_threads() << " threads"
              << std::endl;
}

}  // namespace

TEST_CASE("reference matches llama.cpp: tiny-llama F16", "[reference][oracle]") {
    check_against_oracle("tiny-llama-F16", {0.9999, 5e-2});
}
TEST_CASE("reference matches llama.cpp: tiny-llama Q8_0", "[reference][oracle]") {
    check_against_oracle("tiny-llama-Q8_0", {0.999, 5e-2});
}
TEST_CASE("reference matches llama.cpp: tiny-llama Q4_0", "[reference][oracle]") {
    check_against_oracle("tiny-llama-Q4_0", {0.999, 5e-2});
}
TEST_CASE("reference matches llama.cpp: tiny-llama Q4_K_M", "[reference][oracle]") {
    check_against_oracle("tiny-llama-Q4_K_M", {0.999, 5e-2});
}
TEST_CASE("reference matches llama.cpp: tiny-llama Q6_K", "[reference][oracle]") {
    check_against_oracle("tiny-llama-Q6_K", {0.999, 5e-2});
}
