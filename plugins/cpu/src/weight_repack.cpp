#include "weight_repack.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

namespace apr_cpu {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kCopyAlign = 64;  // each copy starts on a cache line

bool env_set(const char* name) {
    const char* v = std::getenv(name);
    return v && *v && std::strcmp(v, "0") != 0;
}

size_t column_bytes(uint32_t type) {
    switch (type) {
        case APR_TYPE_Q4_0: return kQ4_0GroupColumnBytes;
        case APR_TYPE_Q8_0: return kQ8_0GroupColumnBytes;
        default: return 0;
    }
}

size_t grouped_bytes(const Matrix& m) {
    const size_t col = column_bytes(m.type);
    if (col == 0 || m.n_out % kGroupRows != 0) return 0;
    return static_cast<size_t>(m.n_in / 32) * col * static_cast<size_t>(m.n_out / kGroupRows);
}

// Row r's block i, as the grouped layout of its type places it in a column (block_formats.hpp).
void place_block(uint32_t type, const uint8_t* block, int r, uint8_t* col) {
    const int quad = r / 4, slot = r % 4;
    if (type == APR_TYPE_Q4_0) {
        std::memcpy(col + 2 * r, block + offsetof(BlockQ4_0, d), 2);
        std::memcpy(col + 2 * kGroupRows + 64 * quad + 16 * slot, block + offsetof(BlockQ4_0, qs), 16);
    } else {
        std::memcpy(col + 2 * r, block + offsetof(BlockQ8_0, d), 2);
        uint8_t* q = col + 2 * kGroupRows + 128 * quad + 16 * slot;
        std::memcpy(q, block + offsetof(BlockQ8_0, qs), 16);
        std::memcpy(q + 64, block + offsetof(BlockQ8_0, qs) + 16, 16);
    }
}

void regroup(const Matrix& m, uint8_t* dst, ThreadPool& pool) {
    const size_t col_bytes = column_bytes(m.type);
    const size_t block_bytes = m.type == APR_TYPE_Q4_0 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
    const int64_t n_blocks = m.n_in / 32, n_groups = m.n_out / kGroupRows;
    const size_t group_bytes = static_cast<size_t>(n_blocks) * col_bytes;
    pool.parallel_for(n_groups, [&](int64_t g, unsigned) {
        for (int64_t i = 0; i < n_blocks; ++i) {
            uint8_t* col = dst + static_cast<size_t>(g) * group_bytes + static_cast<size_t>(i) * col_bytes;
            for (int r = 0; r < kGroupRows; ++r)
                place_block(m.type, m.data + static_cast<size_t>(g * kGroupRows + r) * m.row_bytes + static_cast<size_t>(i) * block_bytes, r, col);
        }
    });
}

}  // namespace

GroupedWeights::~GroupedWeights() {
    if (mapping_) munmap(mapping_, mapping_bytes_);
}

void GroupedWeights::build(ModelWeights& w, ThreadPool& pool) {
    if (env_set("APR_CPU_NO_REGROUP")) return;
    std::vector<Matrix*> matrices = {&w.output};
    for (LayerWeights& L : w.layers)
        for (Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down}) matrices.push_back(m);
    size_t total = 0;
    for (const Matrix* m : matrices) total += (grouped_bytes(*m) + kCopyAlign - 1) / kCopyAlign * kCopyAlign;
    if (total == 0) return;

    // One extra huge page of address space lets the copies start on a 2 MiB boundary; untouched
    // pages of it cost nothing.
    mapping_bytes_ = (total + kHugePage - 1) / kHugePage * kHugePage + kHugePage;
    mapping_ = mmap(nullptr, mapping_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping_ == MAP_FAILED) {
        mapping_ = nullptr;
        throw std::bad_alloc();
    }
    const uintptr_t base = (reinterpret_cast<uintptr_t>(mapping_) + kHugePage - 1) / kHugePage * kHugePage;
    uint8_t* next = reinterpret_cast<uint8_t*>(base);
    // Advice only: a kernel without THP refuses it, and the copies then work on small pages.
    if (!env_set("APR_CPU_NO_HUGEPAGES")) madvise(next, mapping_bytes_ - (base - reinterpret_cast<uintptr_t>(mapping_)), MADV_HUGEPAGE);

    for (Matrix* m : matrices) {
        const size_t bytes = grouped_bytes(*m);
        if (bytes == 0) continue;
        regroup(*m, next, pool);
        m->grouped = next;
        next += (bytes + kCopyAlign - 1) / kCopyAlign * kCopyAlign;
    }
}

}  // namespace apr_cpu
