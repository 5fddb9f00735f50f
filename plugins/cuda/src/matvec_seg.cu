// Decode mat-vec for weights stored in 144-byte groups of eight 32-element chunks whose quants
// are aligned 16-byte segments: FormatQ4_0x8 (Q4_0 regrouped at upload: 16 bytes of scales,
// then segment s = chunk s's 16 quant bytes) and FormatQ4_K as stored (a 16-byte header of
// scales, then 128 quant bytes: segment s holds elements 16(s&1) .. 16(s&1)+15 of sub-blocks
// 2(s/2) (low nibbles) and 2(s/2)+1 (high nibbles)).
//
// Why not the shared-memory kernel of matvec.cu: decode is a pure weight stream, and staging
// 18-byte blocks through shared memory and reading them back with 2-byte, bank-conflicting
// loads made the SM's load/store path, not DRAM, the limit (1.3-2.1 TB/s). Here lane l of a
// warp reads segment l % 8 of group l / 8 with one 16-byte load straight into registers (a warp
// instruction covers four whole groups, 576 contiguous bytes), and nothing else touches the
// weights. Each warp takes R rows at once so that the activations each lane needs (its chunk's
// 32 int8 and scale, read through L1) are loaded once for R rows, and the next iteration's
// weight segments are requested before the current ones are multiplied (several kilobytes in
// flight per warp). The weights never change, so a kernel launched with PDL starts streaming
// them before it waits for the previous kernel, which it needs only for the activations.
//
// Fused preparation (one token, SegPrologue): instead of reading activations prepared by a kernel
// of their own, every block prepares the token's row itself into shared memory (RMSNorm of the
// residual row, SwiGLU of the gate and up rows, or the row as it is, then int8 quantization: a
// few microseconds from L2, overlapping the first weight loads), which saves a launch before
// most products of a decode step. It repeats the preparation kernel's arithmetic exactly: the
// sum of squares in the order of that kernel's 512 threads (each thread here stands for two of
// them), the same value expressions and act_quant.cuh's quantization, so the int8 activations
// are the same bits.
//
// Numerics are those of matvec.cu's chunk_dot: per chunk an exact integer dot product (for
// Q4_K the two halves held by neighbouring lanes are added as integers after one shuffle),
// scaled in f32 exactly as there.
#include <algorithm>
#include <cstdlib>

#include "act_quant.cuh"
#include "backend_error.hpp"
#include "kernels.hpp"
#include "launch.cuh"
#include "matvec_jobs.cuh"
#include "weight_formats.cuh"

namespace apr_cuda {
namespace {

constexpr int kWarps = 8;         // warps per block
constexpr int kGroupBytes = 144;  // one group: 8 chunks of 32 elements
constexpr int kLoadsPerLane = 4;  // weight segments a lane requests per iteration (R rows x G groups)

// A streamed weight segment: read once, so it is kept out of L1.
__device__ __forceinline__ uint4 load_stream(const uint8_t* p) {
    uint4 v;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p));
    return v;
}

__device__ __forceinline__ int dot16(const uint4& w, const int4& x, int acc) {
    acc = __dp4a(int(w.x), x.x, acc);
    acc = __dp4a(int(w.y), x.y, acc);
    acc = __dp4a(int(w.z), x.z, acc);
    return __dp4a(int(w.w), x.w, acc);
}
__device__ __forceinline__ uint4 nibbles(const uint4& q, int shift) {
    return make_uint4((q.x >> shift) & 0x0f0f0f0fu, (q.y >> shift) & 0x0f0f0f0fu, (q.z >> shift) & 0x0f0f0f0fu,
                      (q.w >> shift) & 0x0f0f0f0fu);
}

// What a lane keeps of one group's header: Q4_0x8 its chunk's scale (as raw fp16 bits); Q4_K
// the whole 16 bytes (d, dmin, the packed 6-bit scales and mins).
template <class F>
struct Header;
template <>
struct Header<FormatQ4_0x8> {
    unsigned short d;
    __device__ __forceinline__ void load(const uint8_t* g, int seg) {
        d = __ldg(reinterpret_cast<const unsigned short*>(g) + seg);
    }
    __device__ __forceinline__ void clear() { d = 0; }
};
template <>
struct Header<FormatQ4_K> {
    uint4 h;
    __device__ __forceinline__ void load(const uint8_t* g, int) { h = __ldg(reinterpret_cast<const uint4*>(g)); }
    __device__ __forceinline__ void clear() { h = make_uint4(0, 0, 0, 0); }
};

// Sub-block j's 6-bit scale and min from the header words (k_scale_min, weight_formats.cuh,
// on registers: bytes 4..7 are h.y, 8..11 h.z, 12..15 h.w).
__device__ __forceinline__ void q4k_scale_min(const uint4& h, int j, float& sc, float& mn) {
    if (j < 4) {
        sc = float((h.y >> (8 * j)) & 63);
        mn = float((h.z >> (8 * j)) & 63);
    } else {
        const int s = 8 * (j - 4);
        sc = float(((h.w >> s) & 15) | (((h.y >> s) >> 6) & 3) << 4);
        mn = float(((h.w >> s) >> 4 & 15) | (((h.z >> s) >> 6) & 3) << 4);
    }
}

// Chunk 8g + seg of one row times token b's activations (xb: the token's int8 row, dsb: its
// chunk scales and sums), as chunk_dot computes it. All 32 lanes must call it together (Q4_K
// exchanges half sums with the neighbouring lane).
// 16 activation bytes from shared memory (S) or through the read-only path.
template <bool S>
__device__ __forceinline__ int4 load_act(const int8_t* p) {
    if constexpr (S)
        return *reinterpret_cast<const int4*>(p);
    else
        return __ldg(reinterpret_cast<const int4*>(p));
}

template <class F, bool S>
__device__ __forceinline__ float group_dot(const uint4& q, const Header<F>& hd, int seg, const int8_t* xb,
                                           const float2& ds, int g) {
    if constexpr (F::type == kTypeQ4_0x8) {
        const int8_t* xp = xb + (size_t(g) * 8 + seg) * 32;
        const int dot = dot16(nibbles(q, 4), load_act<S>(xp + 16), dot16(nibbles(q, 0), load_act<S>(xp), 0));
        const float a = __half2float(__ushort_as_half(hd.d));
        const int sum_q = int(ds.y);
        return ds.x * (a * float(dot - F::kZero * sum_q));
    } else {
        const int pair = seg >> 1, half = seg & 1;
        const int8_t* xc = xb + (size_t(g) * 8 + 2 * pair) * 32 + 16 * half;
        const int lo = dot16(nibbles(q, 0), load_act<S>(xc), 0);       // sub-block 2 pair
        const int hi = dot16(nibbles(q, 4), load_act<S>(xc + 32), 0);  // sub-block 2 pair + 1
        // This lane finishes sub-block 2 pair + half = seg; its neighbour holds the other half.
        const int other = __shfl_xor_sync(0xffffffffu, half ? lo : hi, 1);
        const int dot = (half ? hi : lo) + other;
        float sc, mn;
        q4k_scale_min(hd.h, seg, sc, mn);
        const float a = __half2float(__ushort_as_half((unsigned short)(hd.h.x & 0xffffu))) * sc;
        const float m = -(__half2float(__ushort_as_half((unsigned short)(hd.h.x >> 16))) * mn);
        const int sum_q = int(ds.y);
        float v = a * float(dot);
        v += m * float(sum_q);
        return ds.x * v;
    }
}

// The int8 activation format of a segmented weight type.
template <class F>
struct ActOf {
    static constexpr ActFormat value = F::type == APR_TYPE_Q4_K ? ActFormat::Q8_K : ActFormat::Q8_0;
};

// Block-wide (kWarps warps): the token's row of n values (n a multiple of 256) prepared from
// `pro` as prepare_kernel<S> does with its kPrepareThreads threads, quantized to xs (n int8) and
// dss (n / 32 chunk scales and sums) in shared memory.
static_assert(2 * 32 * kWarps == kPrepareThreads, "each thread stands for two of the preparation kernel's");
template <ActFormat A, SegSource S>
__device__ __forceinline__ void prepare_prologue(const SegPrologue& pro, int n, int8_t* xs, float2* dss, float* red) {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const float* x = pro.x;
    float scale = 1.0f;
    if constexpr (S == SegSource::Norm) {
        float s0 = 0.0f, s1 = 0.0f;
        for (int i = tid; i < n; i += kPrepareThreads) s0 += x[i] * x[i];
        for (int i = tid + 32 * kWarps; i < n; i += kPrepareThreads) s1 += x[i] * x[i];
        s0 = warp_sum_xor(s0);
        s1 = warp_sum_xor(s1);
        if (lane == 0) {
            red[warp] = s0;
            red[warp + kWarps] = s1;
        }
        __syncthreads();
        float total = 0.0f;
#pragma unroll
        for (int w = 0; w < 2 * kWarps; ++w) total += red[w];
        scale = rsqrtf(total / float(n) + pro.eps);
    }
    for (int base = warp * 256; base < n; base += kWarps * 256) {
        const int e0 = base + lane * 8;
        float v[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const int e = e0 + i;
            if constexpr (S == SegSource::Norm) {
                v[i] = x[e] * scale * pro.aux[e];
            } else if constexpr (S == SegSource::Swiglu) {
                const float g = x[e];
                v[i] = g / (1.0f + expf(-g)) * pro.aux[e];
            } else {
                v[i] = x[e];
            }
        }
        quantize_warp_8<A>(v, lane, true, xs + e0, dss + e0 / 32);
    }
    __syncthreads();
}

// Lane r stores row row0 + r of Q, K or V (one token, every lane holding all R sums): q and k
// rotated as rope_kernel does (the angle in f64, the pair's partner row r ^ 1 in the same warp),
// k and v also into the KV cache.
template <int R>
__device__ __forceinline__ void rope_epilogue(const Q8Jobs& jobs, const SegRope& rope, const float (&acc)[R][1],
                                              int row0, int lane) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const int row = row0 + r;
        if (lane != r || row >= jobs.total_rows) continue;
        int job = 0;
#pragma unroll
        for (int k = 1; k < kMaxJobs; ++k)
            if (k < jobs.n && row >= jobs.job[k].first_row) job = k;
        const Q8Job j = job_of(jobs, row);
        const int jr = row - j.first_row;
        const int h = jr / rope.head_dim, d = jr % rope.head_dim, i = d >> 1;
        float v = acc[r][0] + (j.bias ? j.bias[jr] : 0.0f);
        const int pos = rope.positions[0];
        if (job < 2 && i < rope.n_rot / 2) {
            const float partner = acc[r ^ 1][0] + (j.bias ? j.bias[jr ^ 1] : 0.0f);
            double theta = double(pos) * double(rope.freq_scale) *
                           pow(double(rope.freq_base), -2.0 * i / double(rope.n_rot));
            if (rope.freq_divisors) theta /= double(rope.freq_divisors[i]);
            double sn, c;
            sincos(theta, &sn, &c);
            const double x0 = (d & 1) ? partner : v, x1 = (d & 1) ? v : partner;  // elements 2i, 2i + 1
            v = (d & 1) ? float(x0 * sn + x1 * c) : float(x0 * c - x1 * sn);
        }
        j.y[jr] = v;
        if (job >= 1) {
            const size_t dst = (size_t(h) * rope.n_ctx + pos) * rope.head_dim + d;
            void* cache = job == 1 ? rope.kc : rope.vc;
            if (rope.kv_f16)
                static_cast<__half*>(cache)[dst] = __float2half_rn(v);
            else
                static_cast<float*>(cache)[dst] = v;
        }
    }
}

// The kernel's activation source: read prepared (None) or prepared in the prologue.
enum class Pro { None, Norm, Swiglu, Plain };

template <int R, int B>
struct Shape {
    // Groups per lane per iteration: kLoadsPerLane segments in all, fewer with many tokens
    // (each group's activations take registers per token).
    static constexpr int G = std::min(kLoadsPerLane / R, std::max(1, 8 / B));
};

template <class F, int R, int B, Pro P>
__global__ void __launch_bounds__(32 * kWarps)
    matvec_seg_kernel(Q8Jobs jobs, size_t row_bytes, int n_groups, const int8_t* __restrict__ xq,
                      const float2* __restrict__ xds, SegPrologue pro, SegRope rope, bool with_rope) {
    constexpr bool kPrepared = P != Pro::None;  // activations prepared in shared memory
    static_assert(!kPrepared || B == 1, "the prologue prepares one token");
    constexpr int G = Shape<R, B>::G;
    const int lane = threadIdx.x & 31;
    const int seg = lane & 7, quad = lane >> 3;
    const int row0 = (blockIdx.x * kWarps + (threadIdx.x >> 5)) * R;
    const bool active = row0 < jobs.total_rows;
    if (!kPrepared && !active) {  // (with a prologue, every warp helps with the prologue first)
        wait_for_previous_kernel();
        return;
    }
    const uint8_t* wrow[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const int row = min(row0 + r, jobs.total_rows - 1);  // a clamped row is computed, not written
        const Q8Job j = job_of(jobs, row);
        wrow[r] = j.W + size_t(row - j.first_row) * row_bytes;
    }
    const int n_chunks = n_groups * 8;
    const int cols = n_chunks * 32;

    uint4 q[R][G];
    Header<F> hd[R][G];
    auto fetch = [&](int base, uint4 (&qq)[R][G], Header<F> (&hh)[R][G]) {
#pragma unroll
        for (int i = 0; i < G; ++i) {
            const int g = base + 4 * i + quad;
#pragma unroll
            for (int r = 0; r < R; ++r) {
                if (g < n_groups) {
                    const uint8_t* gp = wrow[r] + size_t(g) * kGroupBytes;
                    qq[r][i] = load_stream(gp + 16 + 16 * seg);
                    hh[r][i].load(gp, seg);
                } else {
                    qq[r][i] = make_uint4(0, 0, 0, 0);
                    hh[r][i].clear();
                }
            }
        }
    };
    if (active) fetch(0, q, hd);
    wait_for_inputs();  // the activations are the previous kernel's output

    const int8_t* xa = xq;
    const float2* dsa = xds;
    if constexpr (kPrepared) {
        extern __shared__ __align__(16) uint8_t act_s[];  // [cols] int8, then [cols / 32] float2
        __shared__ float red[2 * kWarps];
        int8_t* xs = reinterpret_cast<int8_t*>(act_s);
        float2* dss = reinterpret_cast<float2*>(act_s + cols);
        constexpr SegSource S = P == Pro::Norm ? SegSource::Norm : P == Pro::Swiglu ? SegSource::Swiglu : SegSource::Plain;
        prepare_prologue<ActOf<F>::value, S>(pro, cols, xs, dss, red);
        if (!active) {
            allow_next_kernel();
            return;
        }
        xa = xs;
        dsa = dss;
    }

    float acc[R][B];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int b = 0; b < B; ++b) acc[r][b] = 0.0f;

    for (int base = 0; base < n_groups; base += 4 * G) {
        uint4 nq[R][G];
        Header<F> nh[R][G];
        fetch(base + 4 * G, nq, nh);  // next iteration's segments (zeros past the row)
#pragma unroll
        for (int i = 0; i < G; ++i) {
            const int g = base + 4 * i + quad;
            const bool in_row = g < n_groups;
#pragma unroll
            for (int b = 0; b < B; ++b) {
                const size_t ci = size_t(b) * n_chunks + size_t(g) * 8 + seg;
                float2 ds = make_float2(0.0f, 0.0f);
                if (in_row) {
                    if constexpr (kPrepared)
                        ds = dsa[ci];
                    else
                        ds = __ldg(dsa + ci);
                }
                const int8_t* xb = xa + size_t(b) * cols;
                const int gg = in_row ? g : 0;  // past the row: zero weights times chunk 0's activations
#pragma unroll
                for (int r = 0; r < R; ++r) acc[r][b] += group_dot<F, kPrepared>(q[r][i], hd[r][i], seg, xb, ds, gg);
            }
        }
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
            for (int i = 0; i < G; ++i) {
                q[r][i] = nq[r][i];
                hd[r][i] = nh[r][i];
            }
    }

    allow_next_kernel();  // only the reductions and stores are left: let the next kernel's blocks in
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int b = 0; b < B; ++b)
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) acc[r][b] += __shfl_xor_sync(0xffffffffu, acc[r][b], off);
    if constexpr (B == 1 && R % 2 == 0) {
        if (with_rope) {
            rope_epilogue<R>(jobs, rope, acc, row0, lane);
            return;
        }
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const int row = row0 + r;
        if (lane != r || row >= jobs.total_rows) continue;
        const Q8Job j = job_of(jobs, row);
        const int jr = row - j.first_row;
        const float add = j.bias ? j.bias[jr] : 0.0f;
#pragma unroll
        for (int b = 0; b < B; ++b) {
            float v = acc[r][b] + add;
            if (j.residual) v += j.residual[size_t(b) * j.ldr + jr];
            j.y[size_t(b) * j.ldy + jr] = v;
        }
    }
}

// Rows per warp: as many as keep at least kMinWarpsPerSm warps per SM busy (more rows share
// each activation load), within R * B <= 8 accumulators. APR_CUDA_MV_ROWS=1|2|4 forces a count
// (for measurements).
constexpr int kMinWarpsPerSm = 12;

int forced_rows() {
    static const int forced = [] {
        const char* v = std::getenv("APR_CUDA_MV_ROWS");
        const int n = v ? std::atoi(v) : 0;
        return (n == 1 || n == 2 || n == 4) ? n : 0;
    }();
    return forced;
}

template <class F, int R, int B>
void launch_rb(const Q8Jobs& jobs, size_t row_bytes, int n_groups, const int8_t* xq, const float2* xds,
               const SegPrologue* pro, const SegRope* rope, cudaStream_t stream) {
    const int warps = (jobs.total_rows + R - 1) / R;
    const SegRope rp = rope ? *rope : SegRope{};
    const bool with_rope = rope != nullptr;
    if (with_rope && (B != 1 || R % 2 != 0))
        throw BackendError(APR_ERR_INTERNAL, "segmented matvec: fused RoPE needs one token and rows in pairs");
    const int blocks = (warps + kWarps - 1) / kWarps;
    if constexpr (B == 1) {
        if (pro) {
            const size_t smem = segmented_norm_bytes(n_groups * 256);
            const char* what = "segmented int8 matvec kernel (fused preparation)";
            switch (pro->source) {
                case SegSource::Norm:
                    launch_kernel(what, matvec_seg_kernel<F, R, B, Pro::Norm>, blocks, 32 * kWarps, smem, stream, jobs,
                                  row_bytes, n_groups, xq, xds, *pro, rp, with_rope);
                    return;
                case SegSource::Swiglu:
                    launch_kernel(what, matvec_seg_kernel<F, R, B, Pro::Swiglu>, blocks, 32 * kWarps, smem, stream,
                                  jobs, row_bytes, n_groups, xq, xds, *pro, rp, with_rope);
                    return;
                case SegSource::Plain:
                    launch_kernel(what, matvec_seg_kernel<F, R, B, Pro::Plain>, blocks, 32 * kWarps, smem, stream,
                                  jobs, row_bytes, n_groups, xq, xds, *pro, rp, with_rope);
                    return;
            }
        }
    }
    launch_kernel("segmented int8 matvec kernel", matvec_seg_kernel<F, R, B, Pro::None>, blocks, 32 * kWarps, 0, stream,
                  jobs, row_bytes, n_groups, xq, xds, SegPrologue{}, rp, with_rope);
}

template <class F, int B>
void launch_b(const Q8Jobs& jobs, size_t row_bytes, int n_groups, const int8_t* xq, const float2* xds,
              const SegPrologue* pro, const SegRope* rope, int sm_count, cudaStream_t stream) {
    constexpr int kMaxR = std::min(4, 8 / B);
    int r = forced_rows();
    if (r == 0) {
        r = kMaxR;
        while (r > 1 && (jobs.total_rows + r - 1) / r < kMinWarpsPerSm * sm_count) r /= 2;
    }
    r = std::min(r, kMaxR);
    if (rope) r = std::max(r, 2);  // the rotated pairs are neighbouring rows of one warp
    if (r >= 4 && kMaxR >= 4)
        launch_rb<F, kMaxR >= 4 ? 4 : 1, B>(jobs, row_bytes, n_groups, xq, xds, pro, rope, stream);
    else if (r >= 2 && kMaxR >= 2)
        launch_rb<F, kMaxR >= 2 ? 2 : 1, B>(jobs, row_bytes, n_groups, xq, xds, pro, rope, stream);
    else
        launch_rb<F, 1, B>(jobs, row_bytes, n_groups, xq, xds, pro, rope, stream);
}

}  // namespace

void launch_matvec_segmented(uint32_t type, const Q8Jobs& jobs, size_t row_bytes, int cols, int b, const int8_t* xq,
                             const float2* xds, const SegPrologue* pro, const SegRope* rope, int sm_count,
                             cudaStream_t stream) {
    const int n_groups = cols / 256;
    if (rope && (b != 1 || jobs.n != 3 || rope->head_dim % 2 != 0 || jobs.job[1].first_row % 2 != 0 ||
                 jobs.job[2].first_row % 2 != 0))
        throw BackendError(APR_ERR_INTERNAL, "segmented matvec: fused RoPE asked for where it does not apply");
    if (pro && (b != 1 || !segmented_norm_fits(cols)))
        throw BackendError(APR_ERR_INTERNAL, "segmented matvec: fused preparation asked for where it does not apply");
    auto go = [&](auto format) {
        using F = decltype(format);
        switch (b) {
            case 8: launch_b<F, 8>(jobs, row_bytes, n_groups, xq, xds, pro, rope, sm_count, stream); break;
            case 4: launch_b<F, 4>(jobs, row_bytes, n_groups, xq, xds, pro, rope, sm_count, stream); break;
            case 2: launch_b<F, 2>(jobs, row_bytes, n_groups, xq, xds, pro, rope, sm_count, stream); break;
            default: launch_b<F, 1>(jobs, row_bytes, n_groups, xq, xds, pro, rope, sm_count, stream); break;
        }
    };
    if (type == kTypeQ4_0x8)
        go(FormatQ4_0x8{});
    else if (type == APR_TYPE_Q4_K)
        go(FormatQ4_K{});
    else
        throw BackendError(APR_ERR_INTERNAL, "segmented matvec: unexpected weight type");
}

}  // namespace apr_cuda
