// The shared-memory copy, fragment load and int8 MMA instructions of the prefill mat-mat
// kernels that stage their operands in shared memory (matmul_int8_pipelined.cu,
// matmul_int8_overlapped.cu), and the biased-zero accumulator start both rely on.
#pragma once

#include <cstdint>

namespace apr_cuda {

// 16 bytes global -> shared, bypassing L1; bytes past src_bytes are written as zeros.
__device__ __forceinline__ void copy16_async(void* dst, const void* src, int src_bytes) {
    const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void copy8_async(void* dst, const void* src, int src_bytes) {
    const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(s), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void wait_copies() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// Four 8 x 8 b16 matrices (an m16 x k32 int8 A fragment, or two n8 x k32 B fragments).
__device__ __forceinline__ void load_fragments(uint32_t (&r)[4], const uint8_t* p) {
    const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(p));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}

__device__ __forceinline__ void mma_s8(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// d = a . b + c for a c of four equal words, left to the register allocator (a constant start
// needs no register copy per MMA).
__device__ __forceinline__ void mma_s8_from(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, int c) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%10,%10,%10};\n"
        : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "r"(c));
}

// The MMAs start from the bits of 1.5 * 2^23 instead of zero: the integer they return is then
// the float 1.5 * 2^23 + dot, exactly, for any |dot| < 2^22 (a chunk's dot product is at most
// 32 * 128 * 128 = 2^19 in magnitude), and float arithmetic can take it without the conversion
// instruction, which runs at a fraction of the float rate.
constexpr int kBiasedZero = 0x4B400000;
constexpr float kBias = 12582912.0f;  // 1.5 * 2^23
__device__ __forceinline__ float unbias(int biased_dot) { return __int_as_float(biased_dot) - kBias; }

}  // namespace apr_cuda
