// The CPU plugin's regrouped Q4_0 / Q8_0 matrices (weight_repack.hpp) against its plain row
// kernels (APR_CPU_NO_REGROUP=1), on every kernel path, on shapes chosen to reach the edges of
// the grouped drivers: row counts that are an odd number of 8-row groups (a prefill tile of
// two groups left half full), K/V matrices of 3 groups split over threads, an output matrix
// whose rows are not whole groups (it stays on the row kernels beside grouped ones), and
// prefills whose token count leaves a partial run of four activation rows.
//
// Per block both paths form the same integer dot; only the f32 accumulation order differs
// (four lanes per row instead of eight), so the logits agree to rounding, far tighter than
// either does with the reference.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "cpu/cpu_plugin_support.hpp"
#include "model/model.hpp"
#include "model/synthetic_model.hpp"
#include "support/testdata.hpp"

namespace {

using namespace apr::test::cpu;

std::unique_ptr<apr::Model> odd_model(uint32_t type, uint32_t n_vocab) {
    apr::SyntheticModelSpec spec;
    spec.weight_type = type;
    spec.n_vocab = n_vocab;
    spec.n_embd = 96;  // 3 blocks per row; 12 groups of rows
    spec.n_head = 4;   // head_dim 24
    spec.n_head_kv = 1;  // wk / wv: 24 rows, 3 groups
    spec.n_ff = 160;   // 20 groups; ffn_down rows of 5 blocks
    spec.seed = 11;
    const auto path = apr::test::scratch_dir("cpu_regroup") /
                      ("odd-" + std::to_string(type) + "-" + std::to_string(n_vocab) + ".gguf");
    apr::write_synthetic_model(path.string(), spec, 2);
    return apr::Model::load(path.string());
}

// A prefill of 11 tokens (all logits), then 6 decode steps; all rows, in order.
std::vector<float> run(const apr_model_view& view, uint32_t n_threads) {
    Session s(view, 64, n_threads);
    std::vector<int32_t> prompt(11);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 29 + 3) % view.n_vocab);
    std::vector<float> rows = s.step(prompt, 0, true);
    for (uint32_t p = 0; p < 6; ++p) {
        const int32_t token = static_cast<int32_t>((p * 41 + 5) % view.n_vocab);
        const std::vector<float> row = s.step({token}, static_cast<uint32_t>(prompt.size()) + p, false);
        rows.insert(rows.end(), row.begin(), row.end());
    }
    return rows;
}

void check_regrouped_matches_plain(uint32_t type, uint32_t n_vocab) {
    const auto model = odd_model(type, n_vocab);
    const apr_model_view& view = model->view();
    for (const std::string& isa : available_isas()) {
        ScopedIsa scoped(isa);
        for (uint32_t threads : {1u, 3u}) {
            std::vector<float> plain;
            {
                ScopedEnv off("APR_CPU_NO_REGROUP", "1");
                plain = run(view, threads);
            }
            const std::vector<float> grouped = run(view, threads);
            REQUIRE(grouped.size() == plain.size());
            Agreement agg;
            const std::string label = "regrouped vs plain, type " + std::to_string(type) + ", vocab " + std::to_string(n_vocab) +
                                      ", " + isa + ", " + std::to_string(threads) + " threads";
            INFO(label);
            for (size_t r = 0; r < grouped.size() / view.n_vocab; ++r)
                compare_row(grouped.data() + r * view.n_vocab, plain.data() + r * view.n_vocab, view.n_vocab, {0.99999, 1e-2}, agg);
            print_agreement(label, agg);
        }
    }
}

}  // namespace

TEST_CASE("cpu plugin regrouped Q8_0 matches its row kernels on odd shapes", "[cpu][regroup]") {
    check_regrouped_matches_plain(APR_TYPE_Q8_0, 264);  // output: 33 groups, grouped
    check_regrouped_matches_plain(APR_TYPE_Q8_0, 300);  // output: not whole groups, plain rows
}

TEST_CASE("cpu plugin regrouped Q4_0 matches its row kernels on odd shapes", "[cpu][regroup]") {
    check_regrouped_matches_plain(APR_TYPE_Q4_0, 264);
    check_regrouped_matches_plain(APR_TYPE_Q4_0, 300);
}
