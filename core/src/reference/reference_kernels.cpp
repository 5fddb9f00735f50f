#include "reference/reference_kernels.hpp"

#include <apr/backend.h>

#include <algorithm>
#include <cmath>

#include "model/tensor_codec.hpp"

namespace apr::reference {

using apr::bf16_to_f32;
using apr::f32_to_bf16;
using apr::f32_to_fp16;
using apr::fp16_to_f32;

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

namespace {

// Q8_0 / Q8_1 activation blocks (32 values): the scale is stored as f16, the quotient is not.
void round_q8_0(const float* x, float* out, size_t n) {
    for (size_t b = 0; b < n; b += 32) {
        float amax = 0.0f;
        for (size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b + i]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const float d_stored = fp16_to_f32(f32_to_fp16(d));
        for (size_t i = 0; i < 32; ++i) out[b + i] = d_stored * std::nearbyint(x[b + i] * id);
    }
}

// Q8_K activation blocks (256 values), scale in f32.
void round_q8_k(const float* x, float* out, size_t n) {
    for (size_t b = 0; b < n; b += 256) {
        float amax = 0.0f, max = 0.0f;
        for (size_t i = 0; i < 256; ++i) {
            const float ax = std::fabs(x[b + i]);
            if (ax > amax) {
                amax = ax;
                max = x[b + i];
            }
        }
        if (amax == 0.0f) {
            for (size_t i = 0; i < 256; ++i) out[b + i] = 0.0f;
            continue;
        }
        const float iscale = -127.0f / max;
        const float d = 1.0f / iscale;
        for (size_t i = 0; i < 256; ++i) out[b + i] = d * std::min(127.0f, std::nearbyint(iscale * x[b + i]));
    }
}

}  // namespace

void round_activation_for(uint32_t weight_type, const float* x, float* out, size_t n) {
    switch (weight_type) {
        case APR_TYPE_F16:
            for (size_t i = 0; i < n; ++i) out[i] = fp16_to_f32(f32_to_fp16(x[i]));
            return;
        case APR_TYPE_BF16:
            for (size_t i = 0; i < n; ++i) out[i] = bf16_to_f32(f32_to_bf16(x[i]));
            return;
        case APR_TYPE_Q4_0:
        case APR_TYPE_Q4_1:
        case APR_TYPE_Q5_0:
        case APR_TYPE_Q5_1:
        case APR_TYPE_Q8_0:
            round_q8_0(x, out, n);
            return;
        case APR_TYPE_Q4_K:
        case APR_TYPE_Q5_K:
        case APR_TYPE_Q6_K:
            round_q8_k(x, out, n);
            return;
        default:
            if (out != x) std::copy(x, x + n, out);
            return;
    }
}

}  // namespace apr::reference
