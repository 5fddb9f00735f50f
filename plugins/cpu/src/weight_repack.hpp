// Regrouped copies of the Q4_0 and Q8_0 matrices (block_formats.hpp, kGroupRows), made once
// when a session opens: the grouped layout lets decode and prefill run four rows per vector
// instruction, which the file's row-after-row layout does not. The mapped model is left as it
// is (embedding rows and any matrix without a copy are still read from it); the copies live
// as long as this object.
//
// All copies share one anonymous mapping, 2 MiB-aligned and marked MADV_HUGEPAGE (THP is
// often in madvise mode): decode streams every weight byte once per token, and on 4 KiB
// pages that is a TLB miss and page walk every 4 KiB. Knobs, read at session open:
//   APR_CPU_NO_REGROUP=1    no copies (every matrix runs the row kernels; for A/B and tests)
//   APR_CPU_NO_HUGEPAGES=1  no madvise (the copies on whatever pages the kernel gives)
#pragma once

#include <cstddef>
#include <cstdint>

#include "model_weights.hpp"
#include "thread_pool.hpp"

namespace apr_cpu {

class GroupedWeights {
public:
    GroupedWeights() = default;
    GroupedWeights(const GroupedWeights&) = delete;
    GroupedWeights& operator=(const GroupedWeights&) = delete;
    ~GroupedWeights();

    // Sets Matrix::grouped for every Q4_0 / Q8_0 matrix of `w` whose rows come in whole groups.
    void build(ModelWeights& w, ThreadPool& pool);

private:
    void* mapping_ = nullptr;
    size_t mapping_bytes_ = 0;
};

}  // namespace apr_cpu
