#include "weight_repack.hpp"

#include <cstring>

namespace apr_cpu {

void GroupedWeights::build(ModelWeights& w, ThreadPool& pool) {
    group(w.output, pool);
    for (LayerWeights& L : w.layers)
        for (Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down}) group(*m, pool);
}

void GroupedWeights::group(Matrix& m, ThreadPool& pool) {
    if (m.type != APR_TYPE_Q4_0 || m.n_out % kQ4_0GroupRows != 0) return;
    const int64_t n_blocks = m.n_in / 32, n_groups = m.n_out / kQ4_0GroupRows;
    const size_t group_bytes = static_cast<size_t>(n_blocks) * kQ4_0GroupColumnBytes;
    // Not value-initialized: every byte is written below, once.
    std::unique_ptr<uint8_t[]> buffer(new uint8_t[group_bytes * static_cast<size_t>(n_groups)]);
    uint8_t* dst = buffer.get();
    const Matrix& src = m;
    pool.parallel_for(n_groups, [&](int64_t g, unsigned) {
        for (int64_t i = 0; i < n_blocks; ++i) {
            uint8_t* col = dst + static_cast<size_t>(g) * group_bytes + static_cast<size_t>(i) * kQ4_0GroupColumnBytes;
            for (int r = 0; r < kQ4_0GroupRows; ++r) {
                const uint8_t* block = src.data + static_cast<size_t>(g * kQ4_0GroupRows + r) * src.row_bytes +
                                       static_cast<size_t>(i) * sizeof(BlockQ4_0);
                std::memcpy(col + 2 * r, block + offsetof(BlockQ4_0, d), 2);
                std::memcpy(col + 2 * kQ4_0GroupRows + 16 * r, block + offsetof(BlockQ4_0, qs), 16);
            }
        }
    });
    m.grouped = dst;
    buffers_.push_back(std::move(buffer));
}

}  // namespace apr_cpu
