// What a model is, in the terms of a benchmark row: its size, parameter count, weight type, and
// the bytes of weights one decode step has to read.
#pragma once

#include <apr/backend.h>

#include <cstdint>
#include <string>

namespace apr::bench {

struct ModelFootprint {
    std::string arch;             // "llama"
    std::string weight_type;      // the type holding most of the bytes, e.g. "Q4_0"
    uint64_t size_bytes = 0;      // every tensor's bytes, a tied output counted once
    uint64_t params = 0;          // every tensor's elements, a tied output counted once
    // Bytes one decode step reads: every tensor in full (matrices, norms, the output matrix)
    // except token_embd, of which only the one row of the token is read.
    uint64_t decode_read_bytes = 0;
};

ModelFootprint model_footprint(const apr_model_view& model);

// "1.2B", "25.0M": a parameter count as llama-bench prints it.
std::string params_label(uint64_t params);
// "636.18 MiB", "3.56 GiB".
std::string size_label(uint64_t bytes);

}  // namespace apr::bench
