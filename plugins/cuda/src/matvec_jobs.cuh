// The jobs of one decode mat-vec launch, shared by the kernels of matvec.cu and matvec_seg.cu.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels.hpp"
#include "l2_warm.hpp"

namespace apr_cuda {

// Up to kMaxJobs matrices of the same type and width multiplied with the same input in one
// launch (Q/K/V, gate/up): rows first_row .. first_row + rows - 1 of the launch are job k's.
constexpr int kMaxJobs = 3;
struct Q8Job {
    const uint8_t* W;
    int rows;
    int first_row;
    float* y;
    int ldy;
    const float* bias;
    const float* residual;
    int ldr;
};
struct Q8Jobs {
    Q8Job job[kMaxJobs];
    int n;
    int total_rows;
    // Two jobs of equal rows taken alternately (launch row 2i: job 0's row i, 2i + 1: job 1's),
    // so that one warp holds gate row i and up row i (SwiGLU fused, SegPrep); first_row is 0 for
    // both. Only the segmented kernel (matvec_seg.cu) takes such jobs.
    bool interleaved;
    // The next product's weights, prefetched into L2 by the segmented kernel's blocks once their
    // own loads are done (l2_warm.hpp).
    L2Warm warm;
};

// The job holding launch row `row`, field by field (a dynamically indexed parameter array would
// go through local memory).
__device__ __forceinline__ Q8Job job_of(const Q8Jobs& jobs, int row) {
    if (jobs.interleaved) return (row & 1) ? jobs.job[1] : jobs.job[0];
    Q8Job job = jobs.job[0];
#pragma unroll
    for (int k = 1; k < kMaxJobs; ++k)
        if (k < jobs.n && row >= jobs.job[k].first_row) job = jobs.job[k];
    return job;
}
// Launch row `row`'s row within its job j (= job_of(jobs, row)).
__device__ __forceinline__ int row_in_job(const Q8Jobs& jobs, const Q8Job& j, int row) {
    return jobs.interleaved ? row >> 1 : row - j.first_row;
}

// RoPE and the KV-cache store fused behind a decode step's Q/K/V product (jobs 0, 1, 2): the
// rotation of rope_and_store_kv (rope.cu) for APR_ROPE_NORM, whose pairs (2i, 2i+1) are
// neighbouring rows of one warp, then k and v written to the cache at positions[0].
struct SegRope {
    const int32_t* positions;
    int head_dim, n_rot, n_ctx;
    const double2* angles;  // {cos, sin} of the n_rot/2 pairs at positions[0] (RopeParams::angles)
    void* kc;
    void* vc;
    bool kv_f16;
};

// The input's deferred RMSNorm (ActInput::norm_sumsq): every sum is multiplied by
// rs = 1 / sqrt(sum of sumsq[0 .. slots) / n + eps), the slots added in a fixed order.
constexpr int kMaxNormSlots = 64;  // at most n_embd = 16384
struct SegNorm {
    const float* sumsq;  // null: no deferred norm
    int slots, n;
    float eps;
};

// What a one-token product's epilogue prepares for the next product (matmul_residual_norm,
// matmul_gate_up_swiglu in kernels.hpp), 256 values at a time: each block counts the values it
// has written on its group's arrival counter, and the last block to arrive quantizes the group
// (then resets the counter), so the row split of the product stays as it is.
//   ResidualNorm: the values are y = residual + W.in (one job); prepared: y * norm_weight, and
//                 sumsq[group] = the sum of the group's y^2 (the next product's SegNorm).
//   Swiglu:       interleaved gate/up jobs; values[i] = silu(gate_i) * up_i, prepared as they are.
enum class SegPrepMode : int { None, ResidualNorm, Swiglu };
struct SegPrep {
    SegPrepMode mode;
    ActFormat format;  // Q8_0 or Q8_K
    float* values;     // ResidualNorm: the job's y; Swiglu: the SwiGLU output
    const float* norm_weight;
    int8_t* q;
    float2* ds;
    float* sumsq;
    int* counters;     // one per group, zero between launches
};

// Launches the segmented-format kernel (matvec_seg.cu) for the jobs, all of `type`
// (FormatQ4_0x8 or FormatQ4_K), b tokens (1, 2, 4 or 8) of int8 activations xq / xds; with
// `rope` (b == 1, three jobs Q, K, V) the outputs are rotated and stored in the KV cache as well.
// With `norm` the input's deferred RMSNorm is applied (b == 1), with `prep` the epilogue prepares
// the next input (b == 1, no rope; every job's rows a multiple of 256).
void launch_matvec_segmented(uint32_t type, const Q8Jobs& jobs, size_t row_bytes, int cols, int b, const int8_t* xq,
                             const float2* xds, const SegRope* rope, const SegNorm* norm, const SegPrep* prep,
                             int sm_count, cudaStream_t stream);
// Whether `type` is stored in 144-byte groups of eight 16-byte chunk segments.
inline bool is_segmented_type(uint32_t type) { return type == kTypeQ4_0x8 || type == APR_TYPE_Q4_K || type == kTypeQ4_Kx8; }

}  // namespace apr_cuda
