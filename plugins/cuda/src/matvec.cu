// Decode mat-vec: one warp per output row, up to B = 8 tokens per launch.
//
// Quantized weights (matvec_q8_kernel): a persistent grid of warps, each taking whole rows. A
// warp copies a stretch of its row (up to kStageBytes, whole 32-chunk steps; usually the whole
// row) from global to shared memory with cp.async in the widest units the row's alignment allows
// (16 bytes for almost every shape), double-buffered, so each warp always has the next
// kilobytes of weights in flight and every load is coalesced. Then each lane decodes one 32-element chunk at a time to int8 (chunk_q8, weight_formats.cuh)
// and dots it with the tokens' int8 activations (__dp4a, exact integer sums), scaling by the
// weight's and the activation's chunk scales in f32.
//
// Float weights (F32/F16/BF16, matvec_kernel / matvec_shared_x_kernel): the lanes walk the row a
// chunk at a time, decode it to f32 in registers and dot it with the rounded f32 activations.
// Each lane needs the 32 activations of its own chunk, so a warp's activation loads would hit 32
// different 128-byte lines at once. For one or two tokens (decode) the block therefore first
// copies the activations into shared memory, 36 floats per chunk: with that pitch the lanes'
// 16-byte reads fall in distinct banks. Larger batches read them from global memory (L1).
#include "backend_error.hpp"
#include "kernels.hpp"
#include "launch.cuh"
#include "matvec_jobs.cuh"
#include "weight_formats.cuh"

#include <algorithm>
#include <string>

namespace apr_cuda {
namespace {

// ---- quantized weights, int8 activations -------------------------------------------------------

constexpr int kQ8Warps = 4;          // warps per block
constexpr int kStageBytes = 4608;    // most weight bytes of one row a warp stages at once

// The contribution of one chunk: activation chunk (32 int8 in two int4) with scale and sum.
template <class F>
__device__ __forceinline__ float chunk_dot(const QuantChunk& w, const int4& x0, const int4& x1, float2 ds) {
    int lo = 0, hi = 0;
    lo = __dp4a(w.q[0], x0.x, lo);
    lo = __dp4a(w.q[1], x0.y, lo);
    lo = __dp4a(w.q[2], x0.z, lo);
    lo = __dp4a(w.q[3], x0.w, lo);
    hi = __dp4a(w.q[4], x1.x, hi);
    hi = __dp4a(w.q[5], x1.y, hi);
    hi = __dp4a(w.q[6], x1.z, hi);
    hi = __dp4a(w.q[7], x1.w, hi);
    if constexpr (F::kTwoScales) {
        return ds.x * (w.a0 * float(lo) + w.a1 * float(hi));
    } else {
        const int sum_q = int(ds.y);
        float v = w.a0 * float(lo + hi - F::kZero * sum_q);
        if constexpr (F::kHasMin) v += w.m * float(sum_q);
        return ds.x * v;
    }
}

__device__ __forceinline__ void cp_async(void* dst, const void* src, int bytes) {
    const unsigned d = unsigned(__cvta_generic_to_shared(dst));
    if (bytes == 16)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(d), "l"(src) : "memory");
    else if (bytes == 8)
        asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(d), "l"(src) : "memory");
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(d), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_one() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }

// Starts copying n bytes (a multiple of unit) from src to the warp's stage: asynchronous
// (cp.async) for 4-, 8- and 16-byte units, plain 2-byte loads and stores otherwise.
__device__ __forceinline__ void stage_issue(const uint8_t* __restrict__ src, uint8_t* dst, int n, int unit,
                                            int lane) {
    if (unit >= 4) {
        for (int i = lane * unit; i < n; i += 32 * unit) cp_async(dst + i, src + i, unit);
    } else {
        const uint16_t* s = reinterpret_cast<const uint16_t*>(src);
        uint16_t* d = reinterpret_cast<uint16_t*>(dst);
        for (int i = lane; i < n / 2; i += 32) d[i] = __ldg(s + i);
    }
}

// A persistent grid: warp w of W in all takes launch rows w, w + W, ...; each row in stages of
// up to chunks_per_stage chunks. While a stage is multiplied, the next one (of the same row or
// of the warp's next row) is already on its way into the warp's other shared buffer, so the
// weight reads never stop and there is no tail wave of idle SMs.
// `unit`: the widest load (16, 8, 4 or 2 bytes) that divides both row_bytes and the step size.
template <class F, int B>
__global__ void __launch_bounds__(32 * kQ8Warps)
    matvec_q8_kernel(Q8Jobs jobs, size_t row_bytes, int n_chunks, int unit, int chunks_per_stage,
                     const int8_t* __restrict__ xq, const float2* __restrict__ xds) {
    wait_for_previous_kernel();
    extern __shared__ __align__(16) uint8_t stage_all[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int stage_bytes = chunks_per_stage / F::kBlockChunks * F::kBlockBytes;
    uint8_t* const bufs = stage_all + size_t(2 * warp) * stage_bytes;  // this warp's two stage buffers
    const int n_stages = (n_chunks + chunks_per_stage - 1) / chunks_per_stage;
    const int cols = n_chunks * 32;
    const int n_warps = gridDim.x * kQ8Warps;

    int row = blockIdx.x * kQ8Warps + warp;
    if (row >= jobs.total_rows) return;  // only warp-level synchronisation below
    int stage = 0;
    auto issue = [&](int r, int st, uint8_t* dst) {
        const Q8Job j = job_of(jobs, r);
        const size_t byte0 = size_t(st) * stage_bytes;
        const int nbytes = int(min(size_t(stage_bytes), row_bytes - byte0));
        stage_issue(j.W + size_t(r - j.first_row) * row_bytes + byte0, dst, nbytes, unit, lane);
    };
    issue(row, 0, bufs);
    cp_async_commit();

    float acc[B];
#pragma unroll
    for (int b = 0; b < B; ++b) acc[b] = 0.0f;
    int cur = 0;
    while (true) {
        int next_row = row, next_stage = stage + 1;
        if (next_stage == n_stages) {
            next_row = row + n_warps;
            next_stage = 0;
        }
        const bool has_next = next_row < jobs.total_rows;
        if (has_next) issue(next_row, next_stage, bufs + (cur ^ 1) * stage_bytes);
        cp_async_commit();
        cp_async_wait_one();  // this lane's copies of the current stage have landed
        __syncwarp();         // and everyone else's

        const int c0 = stage * chunks_per_stage;
        const int nc = min(chunks_per_stage, n_chunks - c0);
        const uint8_t* st = bufs + cur * stage_bytes;
        for (int c = lane; c < nc; c += 32) {
            QuantChunk w;
            F::chunk_q8(st + (c / F::kBlockChunks) * F::kBlockBytes, c % F::kBlockChunks, w);
            const int cg = c0 + c;
#pragma unroll
            for (int b = 0; b < B; ++b) {
                const int4* xp = reinterpret_cast<const int4*>(xq + size_t(b) * cols + size_t(cg) * 32);
                acc[b] += chunk_dot<F>(w, __ldg(xp), __ldg(xp + 1), __ldg(xds + size_t(b) * n_chunks + cg));
            }
        }
        if (stage == n_stages - 1) {
#pragma unroll
            for (int b = 0; b < B; ++b) {
#pragma unroll
                for (int off = 16; off > 0; off >>= 1) acc[b] += __shfl_xor_sync(0xffffffffu, acc[b], off);
            }
            if (lane == 0) {
                const Q8Job j = job_of(jobs, row);
                const int r = row - j.first_row;
                const float add = j.bias ? j.bias[r] : 0.0f;
#pragma unroll
                for (int b = 0; b < B; ++b) {
                    float v = acc[b] + add;
                    if (j.residual) v += j.residual[size_t(b) * j.ldr + r];
                    j.y[size_t(b) * j.ldy + r] = v;
                }
            }
#pragma unroll
            for (int b = 0; b < B; ++b) acc[b] = 0.0f;
        }
        __syncwarp();  // the current buffer is refilled in the next iteration
        if (!has_next) break;
        row = next_row;
        stage = next_stage;
        cur ^= 1;
    }
}

int widest_unit(size_t a, size_t b) {
    for (int u : {16, 8, 4}) if (a % u == 0 && b % u == 0) return u;
    return 2;
}

// Resident blocks per SM of each instantiation with the largest stages (2 x kStageBytes per
// warp), found by configure_matvec before anything is captured; smaller stages would allow more,
// but a persistent grid of this size already keeps enough weight bytes in flight.
constexpr size_t kQ8MaxSmem = size_t(2 * kQ8Warps) * kStageBytes;
template <class F, int B>
struct Q8Occupancy {
    static inline int blocks_per_sm = 1;
};

template <class F, int B>
void find_occupancy() {
    int n = 0;
    cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, matvec_q8_kernel<F, B>, 32 * kQ8Warps, kQ8MaxSmem),
               "cudaOccupancyMaxActiveBlocksPerMultiprocessor (matvec)");
    Q8Occupancy<F, B>::blocks_per_sm = std::max(1, n);
}

int g_sm_count = 0;  // set by configure_matvec

// The jobs of outputs outs[0..n) for token `token` of their y / residual rows.
Q8Jobs make_jobs(const MatmulOut* outs, int n, int token) {
    Q8Jobs jobs{};
    jobs.n = n;
    int rows = 0;
    for (int k = 0; k < n; ++k) {
        const MatmulOut& o = outs[k];
        Q8Job& j = jobs.job[k];
        j.W = o.W->data;
        j.rows = o.W->rows;
        j.first_row = rows;
        j.y = o.y + size_t(token) * o.ldy;
        j.ldy = o.ldy;
        j.bias = o.bias;
        j.residual = o.residual ? o.residual + size_t(token) * o.ldr : nullptr;
        j.ldr = o.ldr;
        rows += o.W->rows;
    }
    jobs.total_rows = rows;
    return jobs;
}

// One launch for the jobs in `outs` (all of W's type and width), B tokens from `xq`/`xds`.
template <class F, int B>
void launch_q8(const MatmulOut* outs, int n, int token, const int8_t* xq, const float2* xds, const SegNorm* norm,
               cudaStream_t stream) {
    const DeviceMatrix& W0 = *outs[0].W;
    const Q8Jobs jobs = make_jobs(outs, n, token);
    const int rows = jobs.total_rows;
    if constexpr (F::type == kTypeQ4_0x8 || F::type == APR_TYPE_Q4_K || F::type == kTypeQ4_Kx8) {
        // Aligned 16-byte chunk segments: streamed straight into registers (matvec_seg.cu).
        launch_matvec_segmented(F::type, jobs, W0.row_bytes, W0.cols, B, xq, xds, nullptr, norm, nullptr, g_sm_count,
                                stream);
    } else {
        if (norm) throw BackendError(APR_ERR_INTERNAL, "int8 matvec: a deferred RMSNorm input for an unsegmented type");
        constexpr int kStepBytes = 32 / F::kBlockChunks * F::kBlockBytes;  // 32 chunks
        const int n_chunks = W0.cols / 32;
        const int steps = (n_chunks + 31) / 32;
        // Whole rows when they fit, else the fewest equal-ish stages.
        const int max_steps = std::max(1, kStageBytes / kStepBytes);
        const int n_stages = (steps + max_steps - 1) / max_steps;
        const int steps_per_stage = (steps + n_stages - 1) / n_stages;
        const int chunks_per_stage = 32 * steps_per_stage;
        const size_t smem = size_t(2 * kQ8Warps) * steps_per_stage * kStepBytes;
        const int unit = widest_unit(W0.row_bytes, kStepBytes);
        // As many rows for every warp: with more warps than rows per round of resident warps, the
        // last round would run on a fraction of them (measured: 4096-row matrices at 1.3 TB/s).
        const int resident_warps = Q8Occupancy<F, B>::blocks_per_sm * std::max(1, g_sm_count) * kQ8Warps;
        const int rows_per_warp = (rows + resident_warps - 1) / resident_warps;
        const int warps = (rows + rows_per_warp - 1) / rows_per_warp;
        const int blocks = std::max(1, (warps + kQ8Warps - 1) / kQ8Warps);
        launch_kernel("int8 matvec kernel", matvec_q8_kernel<F, B>, blocks, 32 * kQ8Warps, smem, stream, jobs,
                      W0.row_bytes, n_chunks, unit, chunks_per_stage, xq, xds);
    }
}

// ---- float weights, f32 activations ------------------------------------------------------------

constexpr int kRowsPerBlock = 4;  // warps per block

template <class F, int B>
__global__ void __launch_bounds__(32 * kRowsPerBlock)
    matvec_kernel(const uint8_t* __restrict__ W, size_t row_bytes, int rows, int cols, const float* __restrict__ x,
                  int ldx, float* y, int ldy, const float* __restrict__ bias, const float* residual, int ldr) {
    wait_for_previous_kernel();
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5);
    if (row >= rows) return;
    const uint8_t* w_row = W + size_t(row) * row_bytes;
    const int n_chunks = (cols + 31) / 32;
    const bool vector_x = (cols % 4) == 0 && (ldx % 4) == 0;
    float acc[B];
#pragma unroll
    for (int b = 0; b < B; ++b) acc[b] = 0.0f;

    for (int c = lane; c < n_chunks; c += 32) {
        float w[32];
        F::chunk(w_row, c, cols, w);
        const bool full = c * 32 + 32 <= cols;
#pragma unroll
        for (int b = 0; b < B; ++b) {
            const float* xb = x + size_t(b) * ldx + c * 32;
            float s = 0.0f;
            if (full && vector_x) {
#pragma unroll
                for (int i = 0; i < 8; ++i) {
                    const float4 v = __ldg(reinterpret_cast<const float4*>(xb) + i);
                    s += w[4 * i] * v.x + w[4 * i + 1] * v.y + w[4 * i + 2] * v.z + w[4 * i + 3] * v.w;
                }
            } else {
#pragma unroll
                for (int i = 0; i < 32; ++i)
                    if (c * 32 + i < cols) s += w[i] * __ldg(xb + i);
            }
            acc[b] += s;
        }
    }
#pragma unroll
    for (int b = 0; b < B; ++b) {
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) acc[b] += __shfl_xor_sync(0xffffffffu, acc[b], off);
    }
    if (lane == 0) {
        const float add = bias ? bias[row] : 0.0f;
#pragma unroll
        for (int b = 0; b < B; ++b) {
            float v = acc[b] + add;
            if (residual) v += residual[size_t(b) * ldr + row];
            y[size_t(b) * ldy + row] = v;
        }
    }
}

constexpr int kSharedRowsPerBlock = 8;  // warps per block of the shared-activation kernel
constexpr int kChunkPitch = 36;         // floats per chunk in shared memory (32 + 4 of padding)

// Largest dynamic shared memory a block may ask for (set by configure_matvec); 0 = unknown.
int g_shared_limit = 0;

template <class F, int B>
__global__ void __launch_bounds__(32 * kSharedRowsPerBlock)
    matvec_shared_x_kernel(const uint8_t* __restrict__ W, size_t row_bytes, int rows, int cols,
                           const float* __restrict__ x, int ldx, float* y, int ldy, const float* __restrict__ bias,
                           const float* residual, int ldr) {
    wait_for_previous_kernel();
    extern __shared__ __align__(16) float x_s[];  // [B][n_chunks][kChunkPitch]
    const int n_chunks = (cols + 31) / 32;
    // Zeros past `cols` make the last, partial chunk of a float row add nothing.
    for (int b = 0; b < B; ++b)
        for (int e = threadIdx.x; e < n_chunks * 32; e += blockDim.x)
            x_s[(b * n_chunks + (e >> 5)) * kChunkPitch + (e & 31)] = e < cols ? x[size_t(b) * ldx + e] : 0.0f;
    __syncthreads();

    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * kSharedRowsPerBlock + (threadIdx.x >> 5);
    if (row >= rows) return;
    const uint8_t* w_row = W + size_t(row) * row_bytes;
    float acc[B];
#pragma unroll
    for (int b = 0; b < B; ++b) acc[b] = 0.0f;
    for (int c = lane; c < n_chunks; c += 32) {
        float w[32];
        F::chunk(w_row, c, cols, w);
#pragma unroll
        for (int b = 0; b < B; ++b) {
            const float4* xs = reinterpret_cast<const float4*>(x_s + (b * n_chunks + c) * kChunkPitch);
            float s = 0.0f;
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const float4 v = xs[i];
                s += w[4 * i] * v.x + w[4 * i + 1] * v.y + w[4 * i + 2] * v.z + w[4 * i + 3] * v.w;
            }
            acc[b] += s;
        }
    }
#pragma unroll
    for (int b = 0; b < B; ++b) {
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) acc[b] += __shfl_xor_sync(0xffffffffu, acc[b], off);
    }
    if (lane == 0) {
        const float add = bias ? bias[row] : 0.0f;
#pragma unroll
        for (int b = 0; b < B; ++b) {
            float v = acc[b] + add;
            if (residual) v += residual[size_t(b) * ldr + row];
            y[size_t(b) * ldy + row] = v;
        }
    }
}

size_t shared_x_bytes(int cols, int b) { return size_t(b) * ((cols + 31) / 32) * kChunkPitch * sizeof(float); }

// The shared-activation kernel when it fits, else the plain one.
template <class F, int B>
void launch_shared_or_global(const DeviceMatrix& W, const float* x, int ldx, float* y, int ldy, const float* bias,
                             const float* residual, int ldr, cudaStream_t stream);

template <class F, int B>
void launch(const DeviceMatrix& W, const float* x, int ldx, float* y, int ldy, const float* bias,
            const float* residual, int ldr, cudaStream_t stream) {
    const dim3 grid((W.rows + kRowsPerBlock - 1) / kRowsPerBlock);
    launch_kernel("matvec kernel", matvec_kernel<F, B>, grid, 32 * kRowsPerBlock, 0, stream, W.data, W.row_bytes,
                  W.rows, W.cols, x, ldx, y, ldy, bias, residual, ldr);
}

template <class F, int B>
void launch_shared_or_global(const DeviceMatrix& W, const float* x, int ldx, float* y, int ldy, const float* bias,
                             const float* residual, int ldr, cudaStream_t stream) {
    const size_t smem = shared_x_bytes(W.cols, B);
    if (smem > size_t(g_shared_limit)) {
        launch<F, B>(W, x, ldx, y, ldy, bias, residual, ldr, stream);
        return;
    }
    const dim3 grid((W.rows + kSharedRowsPerBlock - 1) / kSharedRowsPerBlock);
    launch_kernel("matvec kernel", matvec_shared_x_kernel<F, B>, grid, 32 * kSharedRowsPerBlock, smem, stream,
        W.data, W.row_bytes, W.rows, W.cols, x, ldx, y, ldy, bias, residual, ldr);
}

}  // namespace

void configure_matvec(int max_shared_bytes, int sm_count) {
    g_sm_count = sm_count;
    for (uint32_t type : {APR_TYPE_Q4_0, APR_TYPE_Q4_1, APR_TYPE_Q5_0, APR_TYPE_Q5_1, APR_TYPE_Q8_0, APR_TYPE_Q4_K,
                          APR_TYPE_Q5_K, APR_TYPE_Q6_K}) {
        dispatch_quant_format(type, [&](auto format) {
            using F = decltype(format);
            find_occupancy<F, 1>();
            find_occupancy<F, 2>();
            find_occupancy<F, 4>();
            find_occupancy<F, 8>();
        });
    }
    // Lets every shared-activation kernel take up to the device's opt-in limit; the launch asks
    // only for what the row length needs. (The int8 kernels stay under the default 48 KiB.)
    for (uint32_t type : {APR_TYPE_F32, APR_TYPE_F16, APR_TYPE_BF16}) {
        dispatch_float_format(type, [&](auto format) {
            using F = decltype(format);
            cuda_check(cudaFuncSetAttribute(matvec_shared_x_kernel<F, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            max_shared_bytes),
                       "cudaFuncSetAttribute (matvec)");
            cuda_check(cudaFuncSetAttribute(matvec_shared_x_kernel<F, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            max_shared_bytes),
                       "cudaFuncSetAttribute (matvec)");
        });
    }
    g_shared_limit = max_shared_bytes;
}

namespace {

// The deferred RMSNorm of `in`, if it has one.
SegNorm seg_norm(const ActInput& in) {
    SegNorm norm{};
    norm.sumsq = in.norm_sumsq;
    norm.slots = in.norm_slots;
    norm.n = in.cols;
    norm.eps = in.norm_eps;
    return norm;
}

// Tokens t .. t+b-1 of `in` through the grouped int8 kernel.
void launch_q8_group(const MatmulOut* outs, int n, const ActInput& in, int t, int b, cudaStream_t stream) {
    const int cols = outs[0].W->cols;
    const SegNorm norm = seg_norm(in);
    const SegNorm* np = norm.sumsq ? &norm : nullptr;
    const int8_t* xq = in.q + size_t(t) * cols;
    const float2* xds = in.ds + size_t(t) * (cols / 32);
    dispatch_quant_format(outs[0].W->type, [&](auto format) {
        using F = decltype(format);
        switch (b) {
            case 8: launch_q8<F, 8>(outs, n, t, xq, xds, np, stream); break;
            case 4: launch_q8<F, 4>(outs, n, t, xq, xds, np, stream); break;
            case 2: launch_q8<F, 2>(outs, n, t, xq, xds, np, stream); break;
            default: launch_q8<F, 1>(outs, n, t, xq, xds, np, stream); break;
        }
    });
}

[[noreturn]] void format_mismatch(const DeviceMatrix& W, const ActInput& in) {
    throw BackendError(APR_ERR_INTERNAL, "matrix product: weight type " + std::to_string(W.type) +
                                             " given an input prepared as format " +
                                             std::to_string(int(in.format)));
}

}  // namespace

void matvec_only(const DeviceMatrix& W, const ActInput& in, float* y, int ldy, const float* bias,
                 const float* residual, int ldr, cudaStream_t stream) {
    if (act_format_for(W.type) != in.format || in.cols != W.cols) format_mismatch(W, in);
    int t = 0;
    while (t < in.n_tokens) {
        const int left = in.n_tokens - t;
        const int b = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        float* yt = y + size_t(t) * ldy;
        const float* rt = residual ? residual + size_t(t) * ldr : nullptr;
        if (act_format_for(W.type) == ActFormat::Q8_0 || act_format_for(W.type) == ActFormat::Q8_K) {
            const MatmulOut out{&W, y, ldy, bias, residual, ldr};
            launch_q8_group(&out, 1, in, t, b, stream);
        } else {
            const float* xt = in.x + size_t(t) * in.ldx;
            dispatch_float_format(W.type, [&](auto format) {
                using F = decltype(format);
                switch (b) {
                    case 8: launch<F, 8>(W, xt, in.ldx, yt, ldy, bias, rt, ldr, stream); break;
                    case 4: launch<F, 4>(W, xt, in.ldx, yt, ldy, bias, rt, ldr, stream); break;
                    case 2: launch_shared_or_global<F, 2>(W, xt, in.ldx, yt, ldy, bias, rt, ldr, stream); break;
                    default: launch_shared_or_global<F, 1>(W, xt, in.ldx, yt, ldy, bias, rt, ldr, stream); break;
                }
            });
        }
        check_launch("matvec kernel");
        t += b;
    }
}

void matmul_group(const MatmulOut* outs, int n, const ActInput& in, cudaStream_t stream) {
    bool grouped = n >= 1 && n <= kMaxJobs && in.n_tokens <= 8 &&
                   (in.format == ActFormat::Q8_0 || in.format == ActFormat::Q8_K);
    for (int k = 0; k < n && grouped; ++k)
        grouped = outs[k].W->type == outs[0].W->type && outs[k].W->cols == outs[0].W->cols &&
                  act_format_for(outs[k].W->type) == in.format && in.cols == outs[k].W->cols;
    if (!grouped) {
        for (int k = 0; k < n; ++k)
            matmul(*outs[k].W, in, outs[k].y, outs[k].ldy, outs[k].bias, outs[k].residual, outs[k].ldr, stream);
        return;
    }
    for (int t = 0; t < in.n_tokens;) {
        const int left = in.n_tokens - t;
        const int b = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        launch_q8_group(outs, n, in, t, b, stream);
        check_launch("grouped matvec kernel");
        t += b;
    }
}

bool matmul_qkv_rope(const MatmulOut (&qkv)[3], const ActInput& in, const RopeParams& p, const KvLayer& kv,
                     const AttentionShape& s, const int32_t* positions, cudaStream_t stream, const L2Warm& warm) {
    const DeviceMatrix& W0 = *qkv[0].W;
    if (in.n_tokens != 1 || !is_segmented_type(W0.type) || act_format_for(W0.type) != in.format ||
        in.cols != W0.cols || p.rope_type != APR_ROPE_NORM || p.head_dim % 2 != 0 || p.n_rot % 2 != 0 ||
        p.head_dim != s.head_dim || !p.angles)
        return false;
    for (const MatmulOut& o : qkv)
        if (o.W->type != W0.type || o.W->cols != W0.cols || o.W->rows % 2 != 0) return false;
    SegRope rope{};
    rope.positions = positions;
    rope.head_dim = p.head_dim;
    rope.n_rot = p.n_rot;
    rope.n_ctx = s.n_ctx;
    rope.angles = p.angles;  // the one token's row
    rope.kc = kv.k;
    rope.vc = kv.v;
    rope.kv_f16 = kv.f16;
    const SegNorm norm = seg_norm(in);
    Q8Jobs jobs = make_jobs(qkv, 3, 0);
    jobs.warm = warm;
    launch_matvec_segmented(W0.type, jobs, W0.row_bytes, W0.cols, 1, in.q, in.ds, &rope,
                            norm.sumsq ? &norm : nullptr, nullptr, g_sm_count, stream);
    check_launch("segmented matvec kernel (fused RoPE)");
    return true;
}

namespace {

// Whether a one-token product of W with `in` can prepare `next_type`'s input in its epilogue
// (matmul_residual_norm, matmul_gate_up_swiglu) for `values` outputs within the scratch.
bool epilogue_fits(const DeviceMatrix& W, const ActInput& in, uint32_t next_type, int values, const ActScratch& out,
                   const EpilogueScratch& e) {
    const ActFormat f = act_format_for(next_type);
    return in.n_tokens == 1 && is_segmented_type(W.type) && act_format_for(W.type) == in.format &&
           in.cols == W.cols && (f == ActFormat::Q8_0 || f == ActFormat::Q8_K) && values % 256 == 0 &&
           size_t(values) <= out.capacity && size_t(values / 256) <= e.groups && out.q != in.q;
}

ActInput prepared_by_epilogue(ActFormat format, int cols, const ActScratch& out) {
    ActInput next;
    next.format = format;
    next.n_tokens = 1;
    next.cols = cols;
    next.q = out.q;
    next.ds = out.ds;
    return next;
}

}  // namespace

bool takes_deferred_norm(uint32_t weight_type) { return is_segmented_type(weight_type); }

bool matmul_residual_norm(const DeviceMatrix& W, const ActInput& in, float* x, const float* norm_weight, float eps,
                          uint32_t next_type, const ActScratch& out, const EpilogueScratch& e, ActInput& next,
                          cudaStream_t stream, const L2Warm& warm) {
    if (!epilogue_fits(W, in, next_type, W.rows, out, e) || W.rows / 256 > kMaxNormSlots) return false;
    const MatmulOut o{&W, x, W.rows, nullptr, x, W.rows};
    SegPrep prep{};
    prep.mode = SegPrepMode::ResidualNorm;
    prep.format = act_format_for(next_type);
    prep.values = x;
    prep.norm_weight = norm_weight;
    prep.q = out.q;
    prep.ds = out.ds;
    prep.sumsq = e.sumsq;
    prep.counters = e.counters;
    const SegNorm norm = seg_norm(in);
    Q8Jobs jobs = make_jobs(&o, 1, 0);
    jobs.warm = warm;
    launch_matvec_segmented(W.type, jobs, W.row_bytes, W.cols, 1, in.q, in.ds, nullptr,
                            norm.sumsq ? &norm : nullptr, &prep, g_sm_count, stream);
    check_launch("segmented matvec kernel (fused residual + RMSNorm preparation)");
    next = prepared_by_epilogue(prep.format, W.rows, out);
    next.norm_sumsq = e.sumsq;
    next.norm_slots = W.rows / 256;
    next.norm_eps = eps;
    return true;
}

bool matmul_gate_up_swiglu(const DeviceMatrix& gate, const DeviceMatrix& up, const ActInput& in, float* h,
                           uint32_t down_type, const ActScratch& out, const EpilogueScratch& e, ActInput& next,
                           cudaStream_t stream, const L2Warm& warm) {
    if (up.type != gate.type || up.rows != gate.rows || up.cols != gate.cols || up.row_bytes != gate.row_bytes ||
        !epilogue_fits(gate, in, down_type, gate.rows, out, e))
        return false;
    const MatmulOut outs[2] = {{&gate, h, gate.rows}, {&up, h, up.rows}};
    Q8Jobs jobs = make_jobs(outs, 2, 0);
    jobs.interleaved = true;
    jobs.job[1].first_row = 0;
    jobs.warm = warm;
    SegPrep prep{};
    prep.mode = SegPrepMode::Swiglu;
    prep.format = act_format_for(down_type);
    prep.values = h;
    prep.q = out.q;
    prep.ds = out.ds;
    prep.counters = e.counters;
    const SegNorm norm = seg_norm(in);
    launch_matvec_segmented(gate.type, jobs, gate.row_bytes, gate.cols, 1, in.q, in.ds, nullptr,
                            norm.sumsq ? &norm : nullptr, &prep, g_sm_count, stream);
    check_launch("segmented matvec kernel (fused SwiGLU preparation)");
    next = prepared_by_epilogue(prep.format, gate.rows, out);
    return true;
}

void matmul(const DeviceMatrix& W, const ActInput& in, float* y, int ldy, const float* bias, const float* residual,
            int ldr, cudaStream_t stream) {
    if (in.n_tokens <= 8)
        matvec_only(W, in, y, ldy, bias, residual, ldr, stream);
    else
        matmul_tiled(W, in, y, ldy, bias, residual, ldr, stream);
}

}  // namespace apr_cuda
