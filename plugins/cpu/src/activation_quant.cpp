#include "activation_quant.hpp"

#include <cmath>
#include <cstring>

#include "half_float.hpp"

namespace apr_cpu {
namespace {

// Round to nearest, ties to even (the default FP environment), as ggml's SIMD quantizers do.
inline int round_even(float v) { return static_cast<int>(std::nearbyintf(v)); }

// Q8_0's quants of one block of 32; returns the unrounded scale amax / 127 and the sum of q.
float quantize_block_q8(const float* x, int8_t* q, int* qsum) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
        q[j] = static_cast<int8_t>(round_even(x[j] * id));
        sum += q[j];
    }
    *qsum = sum;
    return d;
}

void quantize_q8_0(const float* x, int64_t n, ActQ8_0* y) {
    for (int64_t b = 0; b < n / 32; ++b) {
        int sum;
        y[b].d = round_to_fp16(quantize_block_q8(x + b * 32, y[b].qs, &sum));
    }
}

void quantize_q8_1(const float* x, int64_t n, ActQ8_1* y) {
    for (int64_t b = 0; b < n / 32; ++b) {
        int sum;
        // ggml multiplies the unrounded f32 d by the sum before rounding s to fp16.
        const float d = quantize_block_q8(x + b * 32, y[b].qs, &sum);
        y[b].d = round_to_fp16(d);
        y[b].s = round_to_fp16(d * static_cast<float>(sum));
    }
}

void quantize_q8_k(const float* x, int64_t n, ActQ8_K* y) {
    for (int64_t b = 0; b < n / 256; ++b) {
        const float* xb = x + b * 256;
        float amax = 0.0f, max = 0.0f;  // max: the signed value of largest magnitude
        for (int j = 0; j < 256; ++j) {
            const float a = std::fabs(xb[j]);
            if (a > amax) {
                amax = a;
                max = xb[j];
            }
        }
        if (amax == 0.0f) {
            std::memset(&y[b], 0, sizeof(ActQ8_K));
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < 256; ++j) {
            const int v = round_even(iscale * xb[j]);
            y[b].qs[j] = static_cast<int8_t>(v < 127 ? v : 127);
        }
        for (int g = 0; g < 16; ++g) {
            int s = 0;
            for (int j = 0; j < 16; ++j) s += y[b].qs[g * 16 + j];
            y[b].bsums[g] = static_cast<int16_t>(s);
        }
        y[b].d = 1.0f / iscale;
    }
}

}  // namespace

void quantize_activation(ActKind kind, const float* x, int64_t n, void* dst) {
    float* f = static_cast<float*>(dst);
    switch (kind) {
        case ActKind::F32: std::memcpy(dst, x, static_cast<size_t>(n) * sizeof(float)); return;
        case ActKind::F16_ROUND:
            for (int64_t i = 0; i < n; ++i) f[i] = round_to_fp16(x[i]);
            return;
        case ActKind::BF16_ROUND:
            for (int64_t i = 0; i < n; ++i) f[i] = round_to_bf16(x[i]);
            return;
        case ActKind::Q8_0: quantize_q8_0(x, n, static_cast<ActQ8_0*>(dst)); return;
        case ActKind::Q8_1: quantize_q8_1(x, n, static_cast<ActQ8_1*>(dst)); return;
        case ActKind::Q8_K: quantize_q8_k(x, n, static_cast<ActQ8_K*>(dst)); return;
    }
}

}  // namespace apr_cpu
