#include "bench/sample_stats.hpp"

#include <cmath>

namespace apr::bench {

SampleStats sample_stats(const std::vector<double>& samples) {
    SampleStats s;
    s.n = samples.size();
    if (s.n == 0) return s;
    double sum = 0.0;
    for (double x : samples) sum += x;
    s.mean = sum / static_cast<double>(s.n);
    if (s.n < 2) return s;
    double sq = 0.0;
    for (double x : samples) sq += (x - s.mean) * (x - s.mean);
    s.stddev = std::sqrt(sq / static_cast<double>(s.n - 1));
    return s;
}

}  // namespace apr::bench
