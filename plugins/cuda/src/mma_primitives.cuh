// The tensor-core instructions of the kernels that stage their operands in shared memory: the
// prefill mat-mats (matmul.cu, matmul_int8_pipelined.cu, matmul_int8_overlapped.cu) and the
// prefill attention (attention_prefill_mma.cu): shared-memory copies, fragment loads, the int8
// and f16 MMAs, and the biased-zero accumulator start of the int8 kernels.
#pragma once

#include <cstdint>

namespace apr_cuda {

// A shared-memory pointer as the 32-bit address the instructions take.
__device__ __forceinline__ uint32_t smem_address(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, bypassing L1; bytes past src_bytes are written as zeros.
__device__ __forceinline__ void copy16_async(void* dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void copy8_async(void* dst, const void* src, int src_bytes) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(smem_address(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void wait_copies() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// Four 8 x 8 b16 matrices from a shared-memory address (a lane's base plus a constant per
// fragment, which the instruction takes as an immediate instead of a register per fragment), and
// transposed.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t address) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t address) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
}
// The same from a pointer: an m16 x k32 int8 A fragment, or two n8 x k32 B fragments.
__device__ __forceinline__ void load_fragments(uint32_t (&r)[4], const uint8_t* p) { ldmatrix_x4(r, smem_address(p)); }

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

// c += a * b, m16n8k16, f16 inputs, f32 accumulators.
__device__ __forceinline__ void mma_f16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The MMAs start from the bits of 1.5 * 2^23 instead of zero: the integer they return is then
// the float 1.5 * 2^23 + dot, exactly, for any |dot| < 2^22 (a chunk's dot product is at most
// 32 * 128 * 128 = 2^19 in magnitude), and float arithmetic can take it without the conversion
// instruction, which runs at a fraction of the float rate.
constexpr int kBiasedZero = 0x4B400000;
constexpr float kBias = 12582912.0f;  // 1.5 * 2^23
__device__ __forceinline__ float unbias(int biased_dot) { return __int_as_float(biased_dot) - kBias; }

}  // namespace apr_cuda
