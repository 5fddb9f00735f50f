// Host-side launchers of the CUDA backend's kernels, one .cu file per operation family:
//   matvec.cu (decode: a few tokens), matmul.cu (prefill: tensor-core tiles), norm.cu,
//   rope.cu, attention.cu, elementwise.cu (embeddings, SwiGLU, KV-cache stores).
// Every launcher enqueues on `stream` and reports launch errors through BackendError.
// Activations are f32, row-major, one row per token.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace apr_cuda {

// A weight matrix in device memory: `rows` rows of `cols` elements of `type`, each row
// `row_bytes` long and 16-byte aligned.
struct DeviceMatrix {
    const uint8_t* data = nullptr;
    uint32_t type = 0;
    int rows = 0, cols = 0;
    size_t row_bytes = 0;
};

// y[t][r] = W[r] . x[t] (+ bias[r]) (+ residual[t][r]) for t < n_tokens, r < rows.
// `residual` may equal `y` (in-place residual add); `x` must not overlap `y`.
// Launches the mat-vec kernel for up to 8 tokens at a time (decode), else the tiled
// tensor-core kernel (prefill).
void matmul(const DeviceMatrix& W, const float* x, int ldx, int n_tokens, float* y, int ldy, const float* bias,
            const float* residual, int ldr, cudaStream_t stream);
// The two kernels behind it, for the tests that compare them.
void matvec_only(const DeviceMatrix& W, const float* x, int ldx, int n_tokens, float* y, int ldy, const float* bias,
                 const float* residual, int ldr, cudaStream_t stream);
void matmul_tiled(const DeviceMatrix& W, const float* x, int ldx, int n_tokens, float* y, int ldy, const float* bias,
                  const float* residual, int ldr, cudaStream_t stream);

// Lets the decode mat-vec kernels use up to `max_shared_bytes` of dynamic shared memory (the
// device's opt-in limit); called once per session before anything is launched or captured.
void configure_matvec(int max_shared_bytes);

// y[r] = x[r] * weight / sqrt(mean(x[r]^2) + eps) for n_rows rows of n elements (weight has n
// entries). x may equal y. Also serves qwen3's per-head norms (rows = heads).
void rms_norm(const float* x, int ldx, float* y, int ldy, const float* weight, int n, int n_rows, float eps,
              cudaStream_t stream);

struct RopeParams {
    int n_head = 0, n_head_kv = 0, head_dim = 0, n_rot = 0, rope_type = 0;
    float freq_base = 10000.0f, freq_scale = 1.0f;
    const float* freq_divisors = nullptr;  // n_rot/2 entries, or null
};
// Rotates q [n_tokens][n_head*head_dim] and k [n_tokens][n_head_kv*head_dim] in place, token t at
// positions[t] (device memory).
void rope(float* q, float* k, const int32_t* positions, int n_tokens, const RopeParams& p, cudaStream_t stream);

// KV cache of one layer: [n_head_kv][n_ctx][head_dim] for keys and for values, f32 or f16.
struct KvLayer {
    void* k = nullptr;
    void* v = nullptr;
    bool f16 = false;
};
struct AttentionShape {
    int n_head = 0, n_head_kv = 0, head_dim = 0, n_ctx = 0;
};
// Writes k, v rows of n_tokens tokens into the cache at positions[t].
void store_kv(const float* k, const float* v, const int32_t* positions, int n_tokens, const KvLayer& kv,
              const AttentionShape& s, cudaStream_t stream);
// Causal attention of q [n_tokens][n_head*head_dim] over cache entries 0..positions[t], written
// to out [n_tokens][n_head*head_dim]. The keys of each (token, head) are split over n_splits
// blocks (flash-decoding); partial_acc holds n_tokens*n_head*n_splits*head_dim floats and
// partial_ml twice n_tokens*n_head*n_splits.
void attention(const float* q, const KvLayer& kv, const AttentionShape& s, const int32_t* positions, int n_tokens,
               int n_splits, float* partial_acc, float* partial_ml, float* out, cudaStream_t stream);

// x[t] = row tokens[t] of the embedding matrix (decoded to f32).
void embed(const DeviceMatrix& table, const int32_t* tokens, int n_tokens, float* x, cudaStream_t stream);
// gate[i] = silu(gate[i]) * up[i] for n values.
void swiglu(float* gate, const float* up, size_t n, cudaStream_t stream);

// Fails with the launch error of the last kernel, naming `what`.
void check_launch(const char* what);

// cudaSuccess when this build has machine code or PTX for the current device.
cudaError_t kernel_image_status();

}  // namespace apr_cuda
