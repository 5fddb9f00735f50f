// Regrouped copies of the Q4_0 matrices (block_formats.hpp, kQ4_0GroupRows), made once when a
// session opens: the grouped layout lets decode run four rows per vector instruction, which
// the file's row-after-row layout does not. The mapped model is left as it is (embedding rows
// and any matrix without a copy are still read from it); the copies live as long as this object.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model_weights.hpp"
#include "thread_pool.hpp"

namespace apr_cpu {

class GroupedWeights {
public:
    // Sets Matrix::grouped for every Q4_0 matrix of `w` whose rows come in whole groups.
    void build(ModelWeights& w, ThreadPool& pool);

private:
    void group(Matrix& m, ThreadPool& pool);
    std::vector<std::unique_ptr<uint8_t[]>> buffers_;
};

}  // namespace apr_cpu
