#include "gate/logit_comparison.hpp"

#include <cmath>
#include <cstdio>

namespace apr {

namespace {
std::string fmt(const char* format, double a, double b = 0, double c = 0) {
    char buf[160];
    std::snprintf(buf, sizeof buf, format, a, b, c);
    return buf;
}
}  // namespace

PositionComparison compare_logits(std::span<const float> reference, std::span<const float> candidate,
                                  const ParityCriteria& criteria) {
    PositionComparison c;
    const size_t n = reference.size();
    if (candidate.size() != n || n == 0) {
        c.failure = "logit vectors differ in length (" + std::to_string(reference.size()) + " vs " +
                    std::to_string(candidate.size()) + ")";
        return c;
    }
    double dot = 0.0, nr = 0.0, nc = 0.0;
    float best_c = 0.0f;
    float r1 = -INFINITY, r2 = -INFINITY;
    for (size_t i = 0; i < n; ++i) {
        const float r = reference[i];
        const float x = candidate[i];
        if (!std::isfinite(x)) {
            if (!c.non_finite) c.first_non_finite = static_cast<int64_t>(i);
            c.non_finite = true;
            continue;
        }
        dot += static_cast<double>(r) * x;
        nr += static_cast<double>(r) * r;
        nc += static_cast<double>(x) * x;
        c.max_abs_diff = std::max(c.max_abs_diff, std::fabs(static_cast<double>(r) - x));
        if (c.candidate_argmax < 0 || x > best_c) {
            best_c = x;
            c.candidate_argmax = static_cast<int32_t>(i);
        }
        if (r > r1) {
            r2 = r1;
            c.reference_second = c.reference_argmax;
            r1 = r;
            c.reference_argmax = static_cast<int32_t>(i);
        } else if (r > r2) {
            r2 = r;
            c.reference_second = static_cast<int32_t>(i);
        }
    }
    if (c.non_finite) {
        c.failure = "non-finite logit (" + std::string(std::isnan(candidate[c.first_non_finite]) ? "NaN" : "Inf") +
                    ") at vocab index " + std::to_string(c.first_non_finite);
        return c;
    }
    c.cosine = (nr > 0.0 && nc > 0.0) ? dot / (std::sqrt(nr) * std::sqrt(nc)) : 0.0;
    c.near_tie = n > 1 && r1 != 0.0f && (static_cast<double>(r1) - r2) / std::fabs(static_cast<double>(r1)) <= criteria.near_tie;

    const std::string numbers = fmt("cosine %.5f, max abs diff %.3g", c.cosine, c.max_abs_diff) + ", argmax reference " +
                                std::to_string(c.reference_argmax) + " vs backend " + std::to_string(c.candidate_argmax);
    if (!(c.cosine >= criteria.min_cosine)) {
        c.failure = fmt("cosine %.5f < %.4g", c.cosine, criteria.min_cosine) + " (" + numbers + ")";
        return c;
    }
    const bool argmax_ok = c.candidate_argmax == c.reference_argmax ||
                           (c.near_tie && c.candidate_argmax == c.reference_second);
    if (!argmax_ok) {
        c.failure = "argmax differs: reference " + std::to_string(c.reference_argmax) + ", backend " +
                    std::to_string(c.candidate_argmax) +
                    (c.near_tie ? " (near-tie, but not the reference's second " + std::to_string(c.reference_second) + ")"
                                : fmt(" (reference top-2 gap %.3g > %.3g, no near-tie)",
                                      (static_cast<double>(r1) - r2) / std::fabs(static_cast<double>(r1)), criteria.near_tie)) +
                    "; " + numbers;
        return c;
    }
    c.passed = true;
    return c;
}

}  // namespace apr
