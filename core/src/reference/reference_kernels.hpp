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

// silu(gate[i]) * up[i] into gate, where silu(g) = g / (1 + e^-g).
void swiglu(float* gate, const float* up, size_t n);

}  // namespace apr::reference
