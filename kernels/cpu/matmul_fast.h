// The fast CPU matmul: same contract as matmul_cpu (kernels/matmul.h): Y[T, n_out] (=|+=) X[T, n_in] · Wᵀ with the
// weights in f32/f16/bf16 used in place, fp32 arithmetic, OutIn and InOut layouts. One binary for every x86-64:
// the AVX2 and AVX-512 kernels are compiled with per-function target attributes and chosen at run time
// (cpu_isa_selected(), overridable with RWKV_CPU_ISA=scalar|avx2|avx512). Design and measurements:
// docs/cpu-kernels.md.
//
// Numerics (per ISA and dtype). OutIn: each output element is Σ_k w·x accumulated with fused multiply-adds in L
// fp32 lanes (L = 8 for AVX2, 16 for AVX-512), then the lanes are added in a fixed tree. The k of a row go to the
// lanes in blocks: for f32/f16 lane l takes k ≡ l (mod L) in increasing k; for bf16 a block of 2L k gives lane l
// the pair k = 2l, 2l + 1 (the bf16 pair is split by a shift and a mask, cheaper than widening). InOut: each
// element is one FMA chain over k in increasing order. The order depends only on n_in, the dtype and the ISA,
// never on T, the tiling or the thread count, so:
//   - results are bitwise identical for any number of threads, and
//   - decode (T small: tiles on the weights in place) and prefill (T large: GEMM on packed fp32 panels) give
//     bitwise-identical rows (the f16/bf16 -> fp32 conversion is exact).
// Against matmul_cpu (separately rounded products, 8 partial sums) the results differ by rounding only.
#pragma once

#include "kernels/cpu/cpu_features.h"
#include "kernels/matmul.h"

namespace rwkv {

// Y (=|+=) X · Wᵀ with the kernel family cpu_isa_selected().
void matmul_fast_cpu(const MatmulArgs& args, ThreadPool& pool);

// The same with an explicit family (tests and benchmarks); `isa` must satisfy cpu_isa_supported(isa).
// CpuIsa::Scalar runs the reference matmul_cpu.
void matmul_fast_cpu(const MatmulArgs& args, ThreadPool& pool, CpuIsa isa);

namespace detail {
// The per-ISA entry points (kernels/cpu/matmul_fast_<isa>.cpp). Only call them when cpu_isa_supported() says so.
void matmul_fast_avx2(const MatmulArgs& args, ThreadPool& pool);
void matmul_fast_avx512(const MatmulArgs& args, ThreadPool& pool);
}  // namespace detail

}  // namespace rwkv
