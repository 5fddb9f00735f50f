// The jobs of one decode mat-vec launch, shared by the kernels of matvec.cu and matvec_seg.cu.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels.hpp"

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
};

// The job holding launch row `row`, field by field (a dynamically indexed parameter array would
// go through local memory).
__device__ __forceinline__ Q8Job job_of(const Q8Jobs& jobs, int row) {
    Q8Job job = jobs.job[0];
#pragma unroll
    for (int k = 1; k < kMaxJobs; ++k)
        if (k < jobs.n && row >= jobs.job[k].first_row) job = jobs.job[k];
    return job;
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

// Launches the segmented-format kernel (matvec_seg.cu) for the jobs, all of `type`
// (FormatQ4_0x8 or FormatQ4_K), b tokens (1, 2, 4 or 8) of int8 activations xq / xds; with
// `rope` (b == 1, three jobs Q, K, V) the outputs are rotated and stored in the KV cache as well.
void launch_matvec_segmented(uint32_t type, const Q8Jobs& jobs, size_t row_bytes, int cols, int b, const int8_t* xq,
                             const float2* xds, const SegRope* rope, int sm_count, cudaStream_t stream);
// Whether `type` is stored in 144-byte groups of eight 16-byte chunk segments.
inline bool is_segmented_type(uint32_t type) { return type == kTypeQ4_0x8 || type == APR_TYPE_Q4_K; }

}  // namespace apr_cuda
