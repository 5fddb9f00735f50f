// The numbers behind the contract's verdict for one position: cosine similarity of the full
// logit vectors (f64 sums), both argmaxes, the reference's near-tie, max abs diff, non-finite
// values. Pure functions, so every clause is testable on hand-made vectors.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace apr {

struct ParityCriteria {
    double min_cosine = 0.99;  // --parity-threshold
    double near_tie = 0.15;    // reference top-2 relative gap at or below which either may win
};

struct PositionComparison {
    double cosine = 0.0;
    double max_abs_diff = 0.0;
    int32_t reference_argmax = -1;
    int32_t reference_second = -1;
    int32_t candidate_argmax = -1;
    bool near_tie = false;        // (l1 - l2) / |l1| <= near_tie on the reference's logits
    bool non_finite = false;      // NaN or Inf in the candidate's logits
    int64_t first_non_finite = -1;
    bool passed = false;
    std::string failure;          // why it failed, with the numbers; empty when passed
};

PositionComparison compare_logits(std::span<const float> reference, std::span<const float> candidate,
                                  const ParityCriteria& criteria);

}  // namespace apr
