// Comparing rows of logits in tests: cosine similarity (f64 sums), max |a - b|, the worst row
// over many, argmax and top two. Header-only, shared by the backend test units.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>

namespace apr::test {

struct RowDiff {
    double cosine = 1.0;
    double max_abs = 0.0;
    bool finite = true;
};

inline RowDiff compare_rows(const float* a, const float* b, size_t n) {
    RowDiff d;
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(a[i])) d.finite = false;
        dot += double(a[i]) * b[i];
        na += double(a[i]) * a[i];
        nb += double(b[i]) * b[i];
        d.max_abs = std::max(d.max_abs, std::abs(double(a[i]) - b[i]));
    }
    d.cosine = (na > 0 && nb > 0) ? dot / std::sqrt(na * nb) : (na == nb ? 1.0 : 0.0);
    return d;
}

// The worst row seen so far.
struct Worst {
    double cosine = 1.0;
    double max_abs = 0.0;
    void add(const RowDiff& d) {
        cosine = std::min(cosine, d.cosine);
        max_abs = std::max(max_abs, d.max_abs);
    }
};

inline size_t argmax(const float* row, size_t n) { return size_t(std::max_element(row, row + n) - row); }

// Indices of the two largest values (n >= 2).
inline std::pair<size_t, size_t> top2(const float* row, size_t n) {
    size_t first = 0, second = 1;
    if (row[second] > row[first]) std::swap(first, second);
    for (size_t i = 2; i < n; ++i) {
        if (row[i] > row[first]) {
            second = first;
            first = i;
        } else if (row[i] > row[second]) {
            second = i;
        }
    }
    return {first, second};
}

}  // namespace apr::test
