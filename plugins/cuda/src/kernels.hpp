// Host-side launchers of the CUDA backend's kernels, one .cu file per operation family:
//   matvec.cu (decode: a few tokens), matmul.cu (prefill: tensor-core tiles), activations.cu
//   (rounding / quantizing matrix-product inputs, fused with RMSNorm and SwiGLU), norm.cu,
//   rope.cu (with KV-cache stores), attention.cu, elementwise.cu (embeddings).
// Every launcher enqueues on `stream` and reports launch errors through BackendError.
// Activations are f32, row-major, one row per token; matrix products take them prepared
// (rounded or quantized) as llama.cpp multiplies them, see ActFormat.
#pragma once

#include <apr/backend.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "l2_warm.hpp"

namespace apr_cuda {

// A weight matrix in device memory: `rows` rows of `cols` elements of `type`, each row
// `row_bytes` long (rows start wherever the tensor's blocks put them).
struct DeviceMatrix {
    const uint8_t* data = nullptr;
    uint32_t type = 0;
    int rows = 0, cols = 0;
    size_t row_bytes = 0;
};

// Weight types of the backend's own, beyond backend.h's: layouts it regroups at upload for
// aligned loads (weight_repack.hpp), numerically the same as the type they come from.
constexpr uint32_t kTypeQ4_0x8 = 0x10000u | APR_TYPE_Q4_0;  // FormatQ4_0x8, weight_formats.cuh
constexpr uint32_t kTypeQ4_Kx8 = 0x10000u | APR_TYPE_Q4_K;  // FormatQ4_Kx8, weight_formats.cuh

// What a matrix product multiplies its input activations as: llama.cpp's CPU backend converts
// them to the weight type's "vec_dot type" first (../shared/testdata/oracle/README.md), and so do
// we, so that our logits follow llama.cpp's rather than plain f32 math.
//   F32   (f32 weights)         unchanged;
//   F16 / BF16                  each value rounded to f16 / bf16 (ties to even);
//   Q8_0  (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 weights)  blocks of 32: d = amax/127, q = rint(x * (1/d)),
//         scale stored as f16(d) (Q4_1/Q5_1's Q8_1 sum is taken exactly from the q instead);
//   Q8_K  (K-quant weights)     blocks of 256: iscale = 127/amax, q = min(127, rint(iscale * x)),
//         scale 1/iscale in f32.
enum class ActFormat { F32, F16, BF16, Q8_0, Q8_K };
ActFormat act_format_for(uint32_t weight_type);

// A matrix product's input, prepared for one ActFormat, for n_tokens rows of cols values.
struct ActInput {
    ActFormat format = ActFormat::F32;
    int n_tokens = 0, cols = 0;
    const float* src = nullptr;  // the f32 values before rounding, [n_tokens][ld_src]
    int ld_src = 0;
    const float* x = nullptr;    // F32 / F16 / BF16: the values to multiply, [n_tokens][ldx]
    int ldx = 0;
    const int8_t* q = nullptr;   // Q8_0 / Q8_K: [n_tokens][cols] int8 (cols is a multiple of 32)
    const float2* ds = nullptr;  // Q8_0 / Q8_K: [n_tokens][cols/32] {scale, sum of the 32 q} per chunk
    // A deferred RMSNorm (one token, from matmul_residual_norm): q / ds hold x * weight, not yet
    // divided by x's RMS, and the product multiplies its sums by
    // rs = 1 / sqrt(sum(norm_sumsq[0 .. norm_slots)) / cols + norm_eps). rms_norm(x) * weight
    // quantized then differs from llama.cpp's only by rounding (the scale rs * f16(d) instead of
    // f16(rs * d)). Only the segmented mat-vec (Q4_0x8, Q4_K) takes such an input; src is null.
    const float* norm_sumsq = nullptr;
    int norm_slots = 0;
    float norm_eps = 0.0f;
};

// Device scratch that prepared inputs live in, for up to `capacity` values (tokens x cols).
// Preparing an input overwrites what an earlier one left there (stream order keeps earlier
// consumers safe).
struct ActScratch {
    float* rounded = nullptr;
    int8_t* q = nullptr;
    float2* ds = nullptr;
    size_t capacity = 0;
};

// Device state of the decode epilogues below: per group of 256 outputs an arrival counter (zero
// between launches: the last arriver resets it) and a sum of squares.
struct EpilogueScratch {
    int* counters = nullptr;
    float* sumsq = nullptr;
    size_t groups = 0;
};

// Prepares x [n_tokens][ldx] (cols values per row) for a product with `weight_type`.
ActInput prepare_input(const float* x, int ldx, int n_tokens, int cols, uint32_t weight_type,
                       const ActScratch& scratch, cudaStream_t stream);
// `in` itself when it already has weight_type's format, else its source prepared anew.
ActInput prepare_input_for(const ActInput& in, uint32_t weight_type, const ActScratch& scratch,
                           cudaStream_t stream);
// RMSNorm fused with preparation: y [n_rows][n] = x * weight / sqrt(mean(x^2) + eps) in f32,
// and the returned input holds y prepared for weight_type.
ActInput rms_norm_prepared(const float* x, int ldx, float* y, const float* weight, int n, int n_rows, float eps,
                           uint32_t weight_type, const ActScratch& scratch, cudaStream_t stream);
// SwiGLU fused with preparation: gate [n_rows][n] = silu(gate) * up in f32, prepared for weight_type.
ActInput swiglu_prepared(float* gate, const float* up, int n, int n_rows, uint32_t weight_type,
                         const ActScratch& scratch, cudaStream_t stream);

// y[t][r] = W[r] . in[t] (+ bias[r]) (+ residual[t][r]) for t < in.n_tokens, r < rows.
// `residual` may equal `y` (in-place residual add); the input must not overlap `y`.
// Quantized weights take a Q8_0 / Q8_K input and multiply in int8 (exact integer sums per
// chunk, f32 across chunks); float weights take an F32 / F16 / BF16 one. Up to 8 tokens go
// through the mat-vec kernels (decode), more through the tensor-core tiles (prefill).
void matmul(const DeviceMatrix& W, const ActInput& in, float* y, int ldy, const float* bias, const float* residual,
            int ldr, cudaStream_t stream);
// One output of a group of products with the same input: y = W . in (+ bias) (+ residual).
struct MatmulOut {
    const DeviceMatrix* W = nullptr;
    float* y = nullptr;
    int ldy = 0;
    const float* bias = nullptr;
    const float* residual = nullptr;
    int ldr = 0;
};
// matmul for each of the n (<= 3) outputs; one mat-vec launch for all of them when they are
// quantized matrices of one type and width and the input is a decode batch (Q/K/V, gate/up).
// The caller prepares `in` for every W (equal activation formats).
void matmul_group(const MatmulOut* outs, int n, const ActInput& in, cudaStream_t stream);
// matmul_group for a decode step's Q, K and V (qkv[0..2], one token) with rope_and_store_kv
// fused into the product: q and k rotated in their outputs (biases added before the rotation,
// as unfused), k and v stored in the cache; nothing may come between (no q/k norms). Enqueues
// nothing and returns false where the fused kernel does not apply (the matrices are not all of
// one type stored in aligned chunk segments, or NEOX RoPE, whose pairs are not neighbouring rows).
struct RopeParams;
struct KvLayer;
struct AttentionShape;
// `warm`: the next product's weights to prefetch into L2 (l2_warm.hpp), for these three and the
// two fusions below.
bool matmul_qkv_rope(const MatmulOut (&qkv)[3], const ActInput& in, const RopeParams& p, const KvLayer& kv,
                     const AttentionShape& s, const int32_t* positions, cudaStream_t stream, const L2Warm& warm = {});
// Decode-step fusions (one token) of a product with the preparation of the next product's input,
// which saves the preparation kernel's launch: each enqueues nothing and returns false where it
// does not apply (weights not of a segmented type (Q4_0x8, Q4_K), the next type's format not
// Q8_0 / Q8_K, output rows not a multiple of 256). `out` receives the prepared input; it must
// not be the scratch that `in` lies in.
// x += W . in, and `next` = x * norm_weight prepared for next_type with the RMSNorm deferred
// (ActInput::norm_sumsq) to the next product.
bool matmul_residual_norm(const DeviceMatrix& W, const ActInput& in, float* x, const float* norm_weight, float eps,
                          uint32_t next_type, const ActScratch& out, const EpilogueScratch& e, ActInput& next,
                          cudaStream_t stream, const L2Warm& warm = {});
// Whether products with `weight_type` take an input with a deferred RMSNorm.
bool takes_deferred_norm(uint32_t weight_type);
// h = silu(gate . in) * (up . in), and `next` = h prepared for down_type.
bool matmul_gate_up_swiglu(const DeviceMatrix& gate, const DeviceMatrix& up, const ActInput& in, float* h,
                           uint32_t down_type, const ActScratch& out, const EpilogueScratch& e, ActInput& next,
                           cudaStream_t stream, const L2Warm& warm = {});
// The two kernels behind matmul, for the tests that compare them.
void matvec_only(const DeviceMatrix& W, const ActInput& in, float* y, int ldy, const float* bias,
                 const float* residual, int ldr, cudaStream_t stream);
void matmul_tiled(const DeviceMatrix& W, const ActInput& in, float* y, int ldy, const float* bias,
                  const float* residual, int ldr, cudaStream_t stream);

// Lets the decode mat-vec kernels use up to `max_shared_bytes` of dynamic shared memory (the
// device's opt-in limit) and size their persistent grids for `sm_count` SMs; called once per
// session before anything is launched or captured.
void configure_matvec(int max_shared_bytes, int sm_count);

// y[r] = x[r] * weight / sqrt(mean(x[r]^2) + eps) for n_rows rows of n elements (weight has n
// entries). x may equal y. Also serves qwen3's per-head norms (rows = heads).
void rms_norm(const float* x, int ldx, float* y, int ldy, const float* weight, int n, int n_rows, float eps,
              cudaStream_t stream);

struct RopeParams {
    int n_head = 0, n_head_kv = 0, head_dim = 0, n_rot = 0, rope_type = 0;
    float freq_base = 10000.0f, freq_scale = 1.0f;
    const float* freq_divisors = nullptr;  // n_rot/2 entries, or null
    // {cos, sin} of pair i's angle at token t's position, angles[t * n_rot/2 + i] in f64, as
    // rope_angles fills it once per forward pass: every layer rotates by the same angles, so the
    // f64 pow and sincos (several microseconds of a decode step's RoPE epilogue, per layer) are
    // done once instead of n_layer times. Required by rope_and_store_kv and matmul_qkv_rope.
    const double2* angles = nullptr;
};
// angles[t][i] = {cos, sin} of p * freq_scale * base^(-2i/n_rot) (divided by freq_divisors[i]
// when given) at p = positions[t], for n_tokens tokens and the n_rot/2 pairs, computed in f64 as
// the reference does (long positions keep the angle's low bits).
void rope_angles(const int32_t* positions, int n_tokens, const RopeParams& p, double2* angles, cudaStream_t stream);
// KV cache of one layer: [n_head_kv][n_ctx][head_dim] for keys and for values, f32 or f16.
struct KvLayer {
    void* k = nullptr;
    void* v = nullptr;
    bool f16 = false;
};
struct AttentionShape {
    int n_head = 0, n_head_kv = 0, head_dim = 0, n_ctx = 0;
};
// Rotates q [n_tokens][n_head*head_dim] and k [n_tokens][n_head_kv*head_dim] in place, token t at
// positions[t] (device memory), then writes the k and v [n_tokens][n_head_kv*head_dim] rows into
// the cache at positions[t].
void rope_and_store_kv(float* q, float* k, const float* v, const int32_t* positions, int n_tokens, const RopeParams& p,
                       const KvLayer& kv, const AttentionShape& s, cudaStream_t stream);
// Causal attention of q [n_tokens][n_head*head_dim] over cache entries 0..positions[t], written
// to out [n_tokens][n_head*head_dim]. The keys of each (token, head) are split over up to
// n_splits blocks of split_keys keys (a multiple of 32; more keys per block where n_splits of
// them do not cover the context), flash-decoding; partial_acc holds
// n_tokens*n_head*n_splits*head_dim floats, partial_ml twice n_tokens*n_head*n_splits, and
// split_counters n_tokens*n_head ints, zero
// before the first call (the kernel leaves them zero again).
// With out_q / out_ds set, the output is also prepared for a product as `out_format` (Q8_0 or
// Q8_K: [n_tokens][cols] int8 and [n_tokens][cols/32] {scale, sum}, the bits prepare_input
// gives), which only the decode path does: see attention_quantizes. A prefill (16 tokens or more)
// runs on tensor cores (attention_prefill_mma) where tensor_cores is set and the head_dim allows,
// else on the SIMT prefill kernel.
void attention(const float* q, const KvLayer& kv, const AttentionShape& s, const int32_t* positions, int n_tokens,
               int n_splits, int split_keys, float* partial_acc, float* partial_ml, int* split_counters, float* out,
               ActFormat out_format, int8_t* out_q, float2* out_ds, bool tensor_cores, cudaStream_t stream);
// Causal attention of a prefill (positions as for attention) on tensor cores: f16 queries, keys and
// values (rounded from the cache), f32 sums and softmax. Enqueues nothing and returns false for a
// head_dim it has no kernel for (it takes 64 and 128).
bool attention_prefill_mma(const float* q, const KvLayer& kv, const AttentionShape& s, const int32_t* positions,
                           int n_tokens, float* out, cudaStream_t stream);
bool attention_quantizes(const AttentionShape& s, int n_tokens, ActFormat format);
// Blocks of the decode attention kernel (one per head, token and split) that one SM holds at once.
int attention_resident_blocks(bool kv_f16, int head_dim);

// x[t] = row tokens[t] of the embedding matrix (decoded to f32).
void embed(const DeviceMatrix& table, const int32_t* tokens, int n_tokens, float* x, cudaStream_t stream);

// Fails with the launch error of the last kernel, naming `what`.
void check_launch(const char* what);

// cudaSuccess when this build has machine code or PTX for the current device.
cudaError_t kernel_image_status();

}  // namespace apr_cuda
