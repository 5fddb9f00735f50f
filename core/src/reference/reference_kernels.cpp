#include "reference/reference_kernels.hpp"

#include <apr/backend.h>

#include <cmath>

namespace apr::reference {

double dot_f64(const float* a, const float* b, size_t n) {
    // Eight named partial sums (not an array) so that they live in registers.
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 += double(a[i + 0]) * double(b[i + 0]);
        s1 += double(a[i + 1]) * double(b[i + 1]);
        s2 += double(a[i + 2]) * double(b[i + 2]);
        s3 += double(a[i + 3]) * double(b[i + 3]);
        s4 += double(a[i + 4]) * double(b[i + 4]);
        s5 += double(a[i + 5]) * double(b[i + 5]);
        s6 += double(a[i + 6]) * double(b[i + 6]);
        s7 += double(a[i + 7]) * double(b[i + 7]);
    }
    double tail = 0;
    for (; i < n; ++i) tail += double(a[i]) * double(b[i]);
    return (((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))) + tail;
}

void rms_norm(const float* x, const float* weight, float* out, size_t n, float eps) {
    const double mean_square = dot_f64(x, x, n) / double(n);
    const double scale = 1.0 / std::sqrt(mean_square + double(eps));
    for (size_t i = 0; i < n; ++i) out[i] = float(double(x[i]) * scale * double(weight[i]));
}

void apply_rope(float* head, uint32_t n_rot, uint32_t rope_type, uint32_t pos, float freq_base, float freq_scale,
                const float* freq_divisors) {
    const uint32_t n_pairs = n_rot / 2;
    for (uint32_t i = 0; i < n_pairs; ++i) {
        double theta = double(pos) * double(freq_scale) * std::pow(double(freq_base), -2.0 * i / double(n_rot));
        if (freq_divisors) theta /= double(freq_divisors[i]);
        const double c = std::cos(theta);
        const double s = std::sin(theta);
        const uint32_t a = rope_type == APR_ROPE_NEOX ? i : 2 * i;
        const uint32_t b = rope_type == APR_ROPE_NEOX ? i + n_pairs : 2 * i + 1;
        const double x0 = head[a];
        const double x1 = head[b];
        head[a] = float(x0 * c - x1 * s);
        head[b] = float(x0 * s + x1 * c);
    }
}

void swiglu(float* gate, const float* up, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        const double g = gate[i];
        gate[i] = float(g / (1.0 + std::exp(-g)) * double(up[i]));
    }
}

}  // namespace apr::reference
