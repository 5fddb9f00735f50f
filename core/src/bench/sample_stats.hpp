// Mean and sample standard deviation of repeated measurements (llama-bench reports t/s as
// mean ± stddev over its repetitions).
#pragma once

#include <cstddef>
#include <vector>

namespace apr::bench {

struct SampleStats {
    double mean = 0.0;
    double stddev = 0.0;  // sample (n - 1) standard deviation; 0 for fewer than 2 samples
    size_t n = 0;
};

SampleStats sample_stats(const std::vector<double>& samples);

}  // namespace apr::bench
