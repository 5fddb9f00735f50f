// The per-vector math of the reference forward, written plainly: f32 in and out, every sum in
// f64. Each function works on one token's (or one head's) vector; the forward pass decides how
// to spread them over threads.
#pragma once

#include <cstddef>
#include <cstdint>

namespace apr::reference {

// Sum of a[i] * b[i] in f64. The products of two floats are exact in f64; the sum runs in eight
// fixed interleaved partial sums (so the loop vectorizes and is not bound by add latency),
// combined in a fixed order: the result never depends on threads or batching.
double dot_f64(const float* a, const float* b, size_t n);

// out = x / sqrt(mean(x²) + eps) * weight. out may alias x.
void rms_norm(const float* x, const float* weight, float* out, size_t n, float eps);

// Rotates the first n_rot dimensions of one head (a q or k head vector) for position `pos`:
// theta_i = pos * freq_scale * base^(-2i/n_rot) / freq_divisors[i] (divisors may be null),
// pairs (2i, 2i+1) for NORM, (i, i + n_rot/2) for NEOX (rope_type is an apr_rope_type).
void apply_rope(float* head, uint32_t n_rot, uint32_t rope_type, uint32_t pos, float freq_base, float freq_scale,
                const float* freq_divisors);

// The activation a weight of `weight_type` is multiplied with, as llama.cpp's CPU backend (the
// project's oracle, ../shared/testdata/oracle/README.md) defines it: before a matrix product,
// ggml converts the f32 activation to the weight type's dot-product format (its vec_dot_type).
// The reference applies the same rounding, then computes the product exactly (f64 sums):
//   F32: unchanged;  F16 / BF16: rounded to f16 / bf16;
//   Q4_0, Q5_0, Q8_0, Q4_1, Q5_1: Q8_0/Q8_1 blocks of 32 (d = amax/127 stored as f16,
//     q = round-half-even(x * 127/amax));
//   K-quants: Q8_K blocks of 256 (m = the signed value of largest magnitude, iscale = -127/m,
//     q = min(127, round-half-even(iscale * x)), d = 1/iscale in f32).
// n must be whole blocks of the weight type. out may alias x.
void round_activation_for(uint32_t weight_type, const float* x, float* out, size_t n);

// silu(gate[i]) * up[i] into gate, where silu(g) = g / (1 + e^-g).
void swiglu(float* gate, const float* up, size_t n);

}  // namespace apr::reference
