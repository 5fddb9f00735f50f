// Decode mat-vec for weights stored in 144-byte groups of eight 32-element chunks whose quants
// are aligned 16-byte segments: FormatQ4_0x8 (Q4_0 regrouped at upload: 16 bytes of scales,
// then segment s = chunk s's 16 quant bytes), FormatQ4_Kx8 (Q4_K regrouped at upload: segment
// s = sub-block s, the same way) and FormatQ4_K as stored (a 16-byte header of scales, then 128
// quant bytes: segment s holds elements 16(s&1) .. 16(s&1)+15 of sub-blocks 2(s/2) (low
// nibbles) and 2(s/2)+1 (high nibbles)). Q4_K as stored costs per segment a shuffle of half
// sums, a fourth header shuffle and k_scale_min's two cases, and its registers allowed only
// three blocks per SM: H200 7B tg128 434 tokens/s against Q4_0's 519, hence the regrouping.
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
// Fused RoPE (Q/K/V of one token, SegRope): the warp's rows come in pairs (2i, 2i+1), which
// is what APR_ROPE_NORM rotates, so the epilogue rotates q and k itself and stores k and v in the
// KV cache: one launch fewer per layer than rope_and_store_kv (rope.cu), same arithmetic.
// (Preparing the activations in a prologue of every block instead of a kernel of their own,
// RMSNorm or SwiGLU included, measured slower on the H200: hundreds of blocks each redoing it.)
// (So did the other way round: the last block of the wo and down products to finish (a
// counter) doing the next RMSNorm and quantization, which saved 64 launches per token:
// H200 7B tg128 Q4_0 396 against 400 tokens/s, Q4_K 352 against 361.)
//
// Fused preparation of the next input (one token, SegEpilogue): what those attempts lacked is
// parallelism. RMSNorm needs the whole row's sum of squares before anything can be scaled, but
// rms_norm(x) * w quantized is rs * quantize(x * w) up to rounding, with rs one scalar. So wo and
// down quantize x * w per group of 256 outputs as soon as the group is complete (the last of its
// blocks to arrive on a counter does it, as attention.cu's combine), store the group's sum of
// squares, and the consumer sums those few slots and scales its sums by rs (SegNorm). gate/up
// take gate row i and up row i in one warp (interleaved jobs) and quantize silu(g) * u for down
// the same way. A decode layer is then 5 launches instead of 8.
//
// Numerics are those of matvec.cu's chunk_dot: per chunk an exact integer dot product (for
// Q4_K the two halves held by neighbouring lanes are added as integers after one shuffle),
// scaled in f32 exactly as there.
#include <algorithm>
#include <cstdlib>
#include <type_traits>

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
// word seg % 4 of the 16 bytes (d and dmin, then the packed 6-bit scales and mins), the others
// coming from the neighbouring lanes by shuffles when needed (registers are what limits how
// many of these warps an SM holds, and so how many loads are in flight).
template <uint32_t T>
struct Header;
template <>
struct Header<kTypeQ4_0x8> {
    unsigned short d;
    __device__ __forceinline__ void load(const uint8_t* g, int seg) {
        d = __ldg(reinterpret_cast<const unsigned short*>(g) + seg);
    }
    __device__ __forceinline__ void clear() { d = 0; }
};
template <>
struct Header<APR_TYPE_Q4_K> {
    uint32_t w;
    __device__ __forceinline__ void load(const uint8_t* g, int seg) {
        w = __ldg(reinterpret_cast<const uint32_t*>(g) + (seg & 3));
    }
    __device__ __forceinline__ void clear() { w = 0; }
    // The whole header, from lanes 8 * (lane / 8) + 0..3 (all 32 lanes must call it together).
    __device__ __forceinline__ uint4 gather() const {
        const int base = (threadIdx.x & 31) & ~7;
        return make_uint4(__shfl_sync(0xffffffffu, w, base), __shfl_sync(0xffffffffu, w, base + 1),
                          __shfl_sync(0xffffffffu, w, base + 2), __shfl_sync(0xffffffffu, w, base + 3));
    }
};

template <>
struct Header<kTypeQ4_Kx8> {
    uint32_t w;
    __device__ __forceinline__ void load(const uint8_t* g, int seg) {
        w = __ldg(reinterpret_cast<const uint32_t*>(g) + (seg & 3));
    }
    __device__ __forceinline__ void clear() { w = 0; }
    // What lane seg needs of its group's header (all 32 lanes must call it together): word 0 (d
    // and dmin), word 1 (the top bits) and the word holding byte 8 + seg, from lanes
    // 8 * (lane / 8) + 0, 1 and 2 + seg / 4; three shuffles where Q4_K as stored takes four.
    __device__ __forceinline__ void gather(int seg, uint32_t& dm, uint32_t& high, uint32_t& low) const {
        const int base = (threadIdx.x & 31) & ~7;
        dm = __shfl_sync(0xffffffffu, w, base);
        high = __shfl_sync(0xffffffffu, w, base + 1);
        low = __shfl_sync(0xffffffffu, w, base + 2 + (seg >> 2)) >> (8 * (seg & 3));
    }
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
template <class F>
__device__ __forceinline__ float group_dot(const uint4& q, const Header<F::type>& hd, int seg, const int8_t* xb,
                                           const float2& ds, int g) {
    if constexpr (F::type == kTypeQ4_0x8) {
        const int8_t* xp = xb + (size_t(g) * 8 + seg) * 32;
        const int dot = dot16(nibbles(q, 4), __ldg(reinterpret_cast<const int4*>(xp) + 1), dot16(nibbles(q, 0), __ldg(reinterpret_cast<const int4*>(xp)), 0));
        const float a = __half2float(__ushort_as_half(hd.d));
        const int sum_q = int(ds.y);
        return ds.x * (a * float(dot - F::kZero * sum_q));
    } else if constexpr (F::type == kTypeQ4_Kx8) {
        // A whole sub-block per lane, as Q4_0x8: no half sums to exchange.
        const int8_t* xp = xb + (size_t(g) * 8 + seg) * 32;
        const int dot = dot16(nibbles(q, 4), __ldg(reinterpret_cast<const int4*>(xp) + 1), dot16(nibbles(q, 0), __ldg(reinterpret_cast<const int4*>(xp)), 0));
        uint32_t dm, high, low;
        hd.gather(seg, dm, high, low);
        float sc, mn;
        kx8_scale_min(high, low, seg, sc, mn);
        const float a = __half2float(__ushort_as_half((unsigned short)(dm & 0xffffu))) * sc;
        const float m = -(__half2float(__ushort_as_half((unsigned short)(dm >> 16))) * mn);
        const int sum_q = int(ds.y);
        float v = a * float(dot);
        v += m * float(sum_q);
        return ds.x * v;
    } else {
        const int pair = seg >> 1, half = seg & 1;
        const int8_t* xc = xb + (size_t(g) * 8 + 2 * pair) * 32 + 16 * half;
        const int lo = dot16(nibbles(q, 0), __ldg(reinterpret_cast<const int4*>(xc)), 0);       // sub-block 2 pair
        const int hi = dot16(nibbles(q, 4), __ldg(reinterpret_cast<const int4*>(xc + 32)), 0);  // sub-block 2 pair + 1
        // This lane finishes sub-block 2 pair + half = seg; its neighbour holds the other half.
        const int other = __shfl_xor_sync(0xffffffffu, half ? lo : hi, 1);
        const int dot = (half ? hi : lo) + other;
        const uint4 h = hd.gather();
        float sc, mn;
        q4k_scale_min(h, seg, sc, mn);
        const float a = __half2float(__ushort_as_half((unsigned short)(h.x & 0xffffu))) * sc;
        const float m = -(__half2float(__ushort_as_half((unsigned short)(h.x >> 16))) * mn);
        const int sum_q = int(ds.y);
        float v = a * float(dot);
        v += m * float(sum_q);
        return ds.x * v;
    }
}

// Lane r stores row row0 + r of Q, K or V (one token, every lane holding all R sums): q and k
// rotated as rope_kernel does (the angle's cosine and sine in f64 from the per-step table, the
// pair's partner row r ^ 1 in the same warp), k and v also into the KV cache.
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
            const double2 cs = rope.angles[i];
            const double c = cs.x, sn = cs.y;
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

// The deferred RMSNorm's slots (SegNorm) are copied into the warp's shared memory with cp.async
// before the main loop and summed after it, so that their latency hides behind the weight
// stream (loading them before the loop delayed its start; a register holding them across it
// would cost the loop one).
__device__ __forceinline__ void norm_slots_fetch(const SegNorm& norm, float* slots_s, int lane) {
    for (int i = lane; i < norm.slots; i += 32) {
        const unsigned d = unsigned(__cvta_generic_to_shared(slots_s + i));
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(d), "l"(norm.sumsq + i) : "memory");
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// rs, the same in every lane and warp: slots summed lane-wise, then by a fixed shuffle tree.
__device__ __forceinline__ float norm_scale(const SegNorm& norm, const float* slots_s, int lane) {
    asm volatile("cp.async.wait_all;\n" ::: "memory");
    __syncwarp();
    float s = 0.0f;
    for (int i = lane; i < norm.slots; i += 32) s += slots_s[i];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    return rsqrtf(s / float(norm.n) + norm.eps);
}

// Group `grp` (256 values) of the epilogue's output prepared by one warp, once every block
// writing it has arrived. The values come through L2 (__ldcg): other blocks wrote them.
template <ActFormat A>
__device__ __forceinline__ void prepare_group(const SegPrep& p, int grp, int lane) {
    const int e0 = grp * 256 + 8 * lane;
    float v[8];
    float squares = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const float x = __ldcg(p.values + e0 + i);
        if (p.mode == SegPrepMode::ResidualNorm) {
            squares += x * x;
            v[i] = x * p.norm_weight[e0 + i];
        } else {
            v[i] = x;
        }
    }
    if (p.mode == SegPrepMode::ResidualNorm) {
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) squares += __shfl_xor_sync(0xffffffffu, squares, off);
        if (lane == 0) p.sumsq[grp] = squares;
    }
    quantize_warp_256<A>(v, lane, p.q + size_t(grp) * 256, p.ds + size_t(grp) * 8, true);
}

// counter += v with acquire-release semantics at GPU scope: one thread's arrival releases what
// its block stored before a __syncthreads (release is cumulative), and the last arriver's
// acquire, passed on by a __syncthreads, lets its block read what every other block stored.
// Cheaper at a kernel's end than a __threadfence in every thread, which each waits for its own
// stores to be acknowledged.
__device__ __forceinline__ int atomic_add_acq_rel(int* counter, int v) {
    int old;
    asm volatile("atom.acq_rel.gpu.global.add.s32 %0, [%1], %2;\n" : "=r"(old) : "l"(counter), "r"(v) : "memory");
    return old;
}

// The block's arrival on its group's counter (all its threads, after their stores); the last
// block to arrive prepares the group with its first warp. A block's rows (kWarps * R, half as
// many values for SwiGLU) lie inside one group: 256 is a multiple of them.
template <int R>
__device__ __forceinline__ void arrive_and_prepare(const SegPrep& p) {
    __shared__ int last_group;
    __syncthreads();  // the block's stores, before thread 0 releases them
    if (threadIdx.x == 0) {
        const int per_block = p.mode == SegPrepMode::Swiglu ? kWarps * R / 2 : kWarps * R;
        const int grp = blockIdx.x * per_block / 256;
        const bool last = atomic_add_acq_rel(p.counters + grp, per_block) + per_block == 256;
        if (last) p.counters[grp] = 0;  // for the next launch
        last_group = last ? grp : -1;
    }
    __syncthreads();
    const int grp = last_group;
    if (grp < 0 || threadIdx.x >= 32) return;
    if (p.format == ActFormat::Q8_0)
        prepare_group<ActFormat::Q8_0>(p, grp, threadIdx.x);
    else
        prepare_group<ActFormat::Q8_K>(p, grp, threadIdx.x);
}

template <int R, int B>
struct Shape {
    // Groups per lane per iteration: kLoadsPerLane segments in all, fewer with many tokens
    // (each group's activations take registers per token).
    static constexpr int G = std::min(kLoadsPerLane / R, std::max(1, 8 / B));
};

// FormatQ4_Kx8 under a register cap of three blocks per SM (80 registers) instead of four (64,
// where ptxas spills about 100 bytes in the 2- and 4-row kernels), except the one-row kernels
// (wo, down), which fit 64 registers without spilling: at three blocks per SM their 512 blocks
// need a second, mostly idle wave on the H200's 132 SMs. APR_CUDA_Q4KX8_BLOCKS=4|3|mixed
// (default mixed) picks one, for measuring which costs less. H200 7B Q4_K tg128 in one run:
// 3 blocks 453.6 tokens/s, mixed 480.6.
struct Q4Kx8ThreeBlocks : FormatQ4_Kx8 {};
struct Q4Kx8Mixed : FormatQ4_Kx8 {};

// Blocks of 8 warps per SM to ask the register allocator for, so that enough loads are in
// flight: for one token four (Q4_0x8, Q4_Kx8) or three (Q4_K as stored, more registers per
// segment), two for more tokens. The one-token kernels do not spill (checked with -Xptxas -v).
template <class F, int R, int B>
constexpr int min_blocks() {
    if (B > 1) return 2;
    if (std::is_same_v<F, Q4Kx8Mixed>) return R == 1 ? 4 : 3;
    return (F::type == APR_TYPE_Q4_K || std::is_same_v<F, Q4Kx8ThreeBlocks>) ? 3 : 4;
}

// What a launch does beyond y = W . in (one-token launches only): apply the input's deferred
// norm (SegNorm; RoPE may follow), or that and prepare the next input (SegPrep's two modes). A
// template parameter, one variant per epilogue: at the register cap of min_blocks, runtime
// branches for all of them in one kernel made ptxas spill (Q4_K, 4 rows: 24 bytes).
enum class SegEpilogue { Plain, DeferredNorm, ResidualNorm, Swiglu };

template <class F, int R, int B, SegEpilogue E>
__global__ void __launch_bounds__(32 * kWarps, min_blocks<F, R, B>())
    matvec_seg_kernel(Q8Jobs jobs, size_t row_bytes, int n_groups, const int8_t* __restrict__ xq,
                      const float2* __restrict__ xds, SegRope rope, bool with_rope, SegNorm norm, SegPrep prep) {
    constexpr int G = Shape<R, B>::G;
    const int lane = threadIdx.x & 31;
    const int seg = lane & 7, quad = lane >> 3;
    const int row0 = (blockIdx.x * kWarps + (threadIdx.x >> 5)) * R;
    if (row0 >= jobs.total_rows) {
        wait_for_previous_kernel();
        return;
    }
    const uint8_t* wrow[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const int row = min(row0 + r, jobs.total_rows - 1);  // a clamped row is computed, not written
        const Q8Job j = job_of(jobs, row);
        wrow[r] = j.W + size_t(row_in_job(jobs, j, row)) * row_bytes;
    }
    const int n_chunks = n_groups * 8;
    const int cols = n_chunks * 32;

    uint4 q[R][G];
    Header<F::type> hd[R][G];
    auto fetch = [&](int base, uint4 (&qq)[R][G], Header<F::type> (&hh)[R][G]) {
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
    fetch(0, q, hd);
    wait_for_inputs();  // the activations are the previous kernel's output
    // The deferred norm's slots travel to shared memory during the loop (norm_slots_fetch).
    __shared__ float norm_slots_s[E != SegEpilogue::Plain ? kWarps : 1][kMaxNormSlots];
    if constexpr (E != SegEpilogue::Plain) {
        if (norm.sumsq) norm_slots_fetch(norm, norm_slots_s[threadIdx.x >> 5], lane);
    }

    float acc[R][B];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int b = 0; b < B; ++b) acc[r][b] = 0.0f;

    for (int base = 0; base < n_groups; base += 4 * G) {
        uint4 nq[R][G];
        Header<F::type> nh[R][G];
        fetch(base + 4 * G, nq, nh);  // next iteration's segments (zeros past the row)
#pragma unroll
        for (int i = 0; i < G; ++i) {
            const int g = base + 4 * i + quad;
            const bool in_row = g < n_groups;
#pragma unroll
            for (int b = 0; b < B; ++b) {
                const size_t ci = size_t(b) * n_chunks + size_t(g) * 8 + seg;
                const float2 ds = in_row ? __ldg(xds + ci) : make_float2(0.0f, 0.0f);
                const int8_t* xb = xq + size_t(b) * cols;
                const int gg = in_row ? g : 0;  // past the row: zero weights times chunk 0's activations
#pragma unroll
                for (int r = 0; r < R; ++r) acc[r][b] += group_dot<F>(q[r][i], hd[r][i], seg, xb, ds, gg);
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
    if (threadIdx.x == 0) warm_l2_share(jobs.warm);
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int b = 0; b < B; ++b)
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) acc[r][b] += __shfl_xor_sync(0xffffffffu, acc[r][b], off);
    if constexpr (E != SegEpilogue::Plain) {
        if (norm.sumsq) {
            const float rs = norm_scale(norm, norm_slots_s[threadIdx.x >> 5], lane);
#pragma unroll
            for (int r = 0; r < R; ++r)
#pragma unroll
                for (int b = 0; b < B; ++b) acc[r][b] *= rs;
        }
    }
    if constexpr (B == 1 && R % 2 == 0 && (E == SegEpilogue::Plain || E == SegEpilogue::DeferredNorm)) {
        if (with_rope) {
            rope_epilogue<R>(jobs, rope, acc, row0, lane);
            return;
        }
    }
    if constexpr (E == SegEpilogue::Swiglu) {
        // Lane r of an even r: gate row and up row (row0 + r) / 2 are acc[r] and acc[r + 1]
        // (launch_rb launches this variant with one token and an even R only).
#pragma unroll
        for (int r = 0; r + 1 < R; r += 2)
            if (lane == r) prep.values[(row0 + r) >> 1] = swiglu_value(acc[r][0], acc[r + 1][0]);
    } else {
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const int row = row0 + r;
            if (lane != r || row >= jobs.total_rows) continue;
            const Q8Job j = job_of(jobs, row);
            const int jr = row_in_job(jobs, j, row);
            const float add = j.bias ? j.bias[jr] : 0.0f;
#pragma unroll
            for (int b = 0; b < B; ++b) {
                float v = acc[r][b] + add;
                if (j.residual) v += j.residual[size_t(b) * j.ldr + jr];
                j.y[size_t(b) * j.ldy + jr] = v;
            }
        }
    }
    if constexpr (E == SegEpilogue::ResidualNorm || E == SegEpilogue::Swiglu) arrive_and_prepare<R>(prep);
}

// Rows per warp: as many as keep at least min_warps_per_sm warps per SM busy (more rows share
// each activation load), within R * B <= 8 accumulators. APR_CUDA_MV_ROWS=1|2|4 forces a count
// and APR_CUDA_MV_MIN_WARPS sets the threshold (for measurements).
int env_int(const char* name, int fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::atoi(v) : fallback;
}

int forced_rows() {
    static const int forced = [] {
        const int n = env_int("APR_CUDA_MV_ROWS", 0);
        return (n == 1 || n == 2 || n == 4) ? n : 0;
    }();
    return forced;
}

// APR_CUDA_Q4KX8_BLOCKS: 3, 4, or anything else (mixed) -> 3, 4 or 0.
int q4kx8_blocks() {
    static const int n = [] {
        const int v = env_int("APR_CUDA_Q4KX8_BLOCKS", 0);
        return v == 3 || v == 4 ? v : 0;
    }();
    return n;
}

// The threshold: 32 warps per SM for one-token Q4_0x8 products (Q/K/V then take 2 rows per warp
// instead of 4), 16 otherwise. H200 7B tg128, three interleaved pairs in one run: Q4_0 532.3
// against 537.8 tokens/s with 32, Q4_K 512.5 against 503.1 (so Q4_K keeps 16).
template <class F, int B>
int min_warps_per_sm() {
    static const int forced = env_int("APR_CUDA_MV_MIN_WARPS", 0);
    if (forced > 0) return forced;
    return F::type == kTypeQ4_0x8 && B == 1 ? 32 : 16;
}

template <class F, int R, int B>
void launch_rb(const Q8Jobs& jobs, size_t row_bytes, int n_groups, const int8_t* xq, const float2* xds,
               const SegRope* rope, const SegNorm* norm, const SegPrep* prep, cudaStream_t stream) {
    const int warps = (jobs.total_rows + R - 1) / R;
    const int blocks = (warps + kWarps - 1) / kWarps;
    const SegRope rp = rope ? *rope : SegRope{};
    const bool with_rope = rope != nullptr;
    if (with_rope && (B != 1 || R % 2 != 0))
        throw BackendError(APR_ERR_INTERNAL, "segmented matvec: fused RoPE needs one token and rows in pairs");
    const SegNorm nm = norm ? *norm : SegNorm{};
    const SegPrep pp = prep ? *prep : SegPrep{};
    if ((norm || prep) && B != 1)
        throw BackendError(APR_ERR_INTERNAL, "segmented matvec: a deferred norm or a fused epilogue needs one token");
    if (prep && prep->mode == SegPrepMode::Swiglu && R % 2 != 0)
        throw BackendError(APR_ERR_INTERNAL, "segmented matvec: fused SwiGLU needs rows in pairs");
    auto go = [&](auto kernel) {
        launch_kernel("segmented int8 matvec kernel", kernel, blocks, 32 * kWarps, 0, stream, jobs, row_bytes,
                      n_groups, xq, xds, rp, with_rope, nm, pp);
    };
    if constexpr (B == 1) {
        if (prep && prep->mode == SegPrepMode::Swiglu) {
            if constexpr (R % 2 == 0) go(matvec_seg_kernel<F, R, B, SegEpilogue::Swiglu>);
        } else if (prep) {
            go(matvec_seg_kernel<F, R, B, SegEpilogue::ResidualNorm>);
        } else if (norm) {
            go(matvec_seg_kernel<F, R, B, SegEpilogue::DeferredNorm>);
        } else {
            go(matvec_seg_kernel<F, R, B, SegEpilogue::Plain>);
        }
    } else {
        go(matvec_seg_kernel<F, R, B, SegEpilogue::Plain>);
    }
}

template <class F, int B>
void launch_b(const Q8Jobs& jobs, size_t row_bytes, int n_groups, const int8_t* xq, const float2* xds,
              const SegRope* rope, const SegNorm* norm, const SegPrep* prep, int sm_count, cudaStream_t stream) {
    constexpr int kMaxR = std::min(4, 8 / B);
    int r = forced_rows();
    if (r == 0) {
        r = kMaxR;
        while (r > 1 && (jobs.total_rows + r - 1) / r < min_warps_per_sm<F, B>() * sm_count) r /= 2;
    }
    r = std::min(r, kMaxR);
    // The rotated pairs and the gate/up pairs are neighbouring rows of one warp.
    if (rope || (prep && prep->mode == SegPrepMode::Swiglu)) r = std::max(r, 2);
    if (r >= 4 && kMaxR >= 4)
        launch_rb<F, kMaxR >= 4 ? 4 : 1, B>(jobs, row_bytes, n_groups, xq, xds, rope, norm, prep, stream);
    else if (r >= 2 && kMaxR >= 2)
        launch_rb<F, kMaxR >= 2 ? 2 : 1, B>(jobs, row_bytes, n_groups, xq, xds, rope, norm, prep, stream);
    else
        launch_rb<F, 1, B>(jobs, row_bytes, n_groups, xq, xds, rope, norm, prep, stream);
}

}  // namespace

void launch_matvec_segmented(uint32_t type, const Q8Jobs& jobs, size_t row_bytes, int cols, int b, const int8_t* xq,
                             const float2* xds, const SegRope* rope, const SegNorm* norm, const SegPrep* prep,
                             int sm_count, cudaStream_t stream) {
    const int n_groups = cols / 256;
    if (rope && (b != 1 || jobs.n != 3 || rope->head_dim % 2 != 0 || jobs.job[1].first_row % 2 != 0 ||
                 jobs.job[2].first_row % 2 != 0))
        throw BackendError(APR_ERR_INTERNAL, "segmented matvec: fused RoPE asked for where it does not apply");
    if (norm && (norm->slots < 1 || norm->slots > kMaxNormSlots))
        throw BackendError(APR_ERR_INTERNAL, "segmented matvec: a deferred RMSNorm over too many slots");
    if (prep && norm && prep->sumsq == norm->sumsq && prep->mode == SegPrepMode::ResidualNorm)
        throw BackendError(APR_ERR_INTERNAL, "segmented matvec: a launch would read and write the same norm slots");
    if (prep) {
        bool fits = b == 1 && !rope && (prep->format == ActFormat::Q8_0 || prep->format == ActFormat::Q8_K);
        if (prep->mode == SegPrepMode::Swiglu)
            fits = fits && jobs.interleaved && jobs.n == 2 && jobs.job[0].rows == jobs.job[1].rows &&
                   jobs.job[0].rows % 256 == 0;
        else
            fits = fits && !jobs.interleaved && jobs.n == 1 && jobs.total_rows % 256 == 0;
        if (!fits) throw BackendError(APR_ERR_INTERNAL, "segmented matvec: fused preparation asked for where it does not apply");
    }
    auto go = [&](auto format) {
        using F = decltype(format);
        switch (b) {
            case 8: launch_b<F, 8>(jobs, row_bytes, n_groups, xq, xds, rope, norm, prep, sm_count, stream); break;
            case 4: launch_b<F, 4>(jobs, row_bytes, n_groups, xq, xds, rope, norm, prep, sm_count, stream); break;
            case 2: launch_b<F, 2>(jobs, row_bytes, n_groups, xq, xds, rope, norm, prep, sm_count, stream); break;
            default: launch_b<F, 1>(jobs, row_bytes, n_groups, xq, xds, rope, norm, prep, sm_count, stream); break;
        }
    };
    if (type == kTypeQ4_0x8)
        go(FormatQ4_0x8{});
    else if (type == APR_TYPE_Q4_K)
        go(FormatQ4_K{});
    else if (type == kTypeQ4_Kx8 && q4kx8_blocks() == 3)
        go(Q4Kx8ThreeBlocks{});
    else if (type == kTypeQ4_Kx8 && q4kx8_blocks() == 4)
        go(FormatQ4_Kx8{});
    else if (type == kTypeQ4_Kx8)
        go(Q4Kx8Mixed{});
    else
        throw BackendError(APR_ERR_INTERNAL, "segmented matvec: unexpected weight type");
}

}  // namespace apr_cuda
