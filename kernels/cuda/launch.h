// kernels/cuda/launch.h — host-callable launchers of the CUDA kernels. All pointers are device pointers; each
// launcher enqueues on `stream`, never synchronises, never allocates, and checks the launch (cudaGetLastError ->
// rwkv::Error via RWKV_CUDA_CHECK in kernels/cuda/check.h). Every launch shape depends only on the arguments'
// shapes (B, T, C, n_in, n_out, ...), never on device data, so every launcher can be captured in a CUDA graph.
// docs/cuda-kernels.md describes each kernel (mapping, layout, bytes moved) and the tolerances of its tests.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backend/backend.h"  // EmbedArgs + the kernels/*.h Args structs

namespace rwkv::cuda {

// x[t] = emb[tokens[t]]; tokens [T] int32 on the device (each < V, checked by the caller), emb fp32 [V, C].
void embed(const EmbedArgs& a, cudaStream_t s);

// LayerNorm per row (PyTorch semantics, biased variance, eps kLayerNormEps); y may equal x.
void layer_norm(const LayerNormArgs& a, cudaStream_t s);

// Token shift + n_mix mixes. a.prev is a DEVICE array of B device pointers (each [C]), updated to u[b, T-1].
void token_shift(const TokenShiftArgs& a, cudaStream_t s);

// y = act(y + b) for every Activation kind (Decay = rwkv7_decay with expf).
void bias_act(const BiasActArgs& a, cudaStream_t s);

// κ̂ = normalize_per_head(k ⊙ k_k); k' and v' in place (kernels/time_mix.h).
void key_prep(const KeyPrepArgs& a, cudaStream_t s);

// WKV-7 recurrence. a.state is a DEVICE array of B device pointers (each [H, 64, 64] fp32, S[h][value][key]).
// T == 1 runs the decode kernel, T > 1 the sequence kernel; both do the same arithmetic per token, so T
// one-token calls and one T-token call give bitwise-identical y and state.
void wkv7(const Wkv7Args& a, cudaStream_t s);

// GroupNorm per head (eps kGroupNormEps) + bonus (Σ r k' r_k)·v' then ⊙ g. a.out may equal a.y.
void time_mix_output(const TimeMixOutputArgs& a, cudaStream_t s);

// ---- GEMV: y (=|+=) x·Wᵀ for small T (T <= kMaxGemvT), weights F16, BF16 or F32 in either layout
// (WeightMatrix::Layout::OutIn or InOut, kernels/matmul.h); a.w points to a HOST WeightMatrix whose `data` is a
// device pointer. fp32 accumulation.
//   OutIn: warp per row (block per row when n_out < 1024), 16-byte weight loads, no workspace.
//   InOut: column tiles × hidden (input) tiles; each block reduces its tile deterministically and, when there is
//          more than one hidden tile, writes a partial sum to `workspace` that a second kernel adds up in a fixed
//          order. With `sparse_input`, a block reads only the weight rows i for which some x[t][i] != 0 (the
//          sparse ReLU² FFN: ffn_value stored InOut [F, C]); the result is bitwise equal to sparse_input = false
//          for finite weights (same partition, same order; skipped products are exact zeros; an inf/NaN weight
//          in a skipped row gives NaN densely but not sparsely). sparse_input is ignored for OutIn.
// Shapes that the vector kernels cannot take (a row length not a multiple of 8, unaligned pointers) go to a
// plain fallback kernel, still correct. Results are deterministic (no atomics) and depend only on the shapes.
constexpr int kMaxGemvT = 8;
// Bytes of workspace gemv needs for this matrix and T (0 for OutIn and for InOut shapes with one hidden tile).
size_t gemv_workspace_bytes(const WeightMatrix& w, int T);
// Throws rwkv::Error (RWKV_STATUS_INTERNAL) when T > kMaxGemvT or workspace_bytes < gemv_workspace_bytes(*a.w, a.T).
void gemv(const MatmulArgs& a, bool sparse_input, float* workspace, size_t workspace_bytes, cudaStream_t s);

// dst[r] = src[src_row0 + r * src_row_stride] for r < n_rows, rows of C floats. src and dst must not overlap
// (used to gather each sequence's last row before the head: src_row0 = T-1, src_row_stride = T).
void copy_rows(const float* src, int64_t src_row0, int64_t src_row_stride, float* dst, int n_rows, int C,
               cudaStream_t s);

// Converts n elements from src (src_t) to dst (dst_t) on the device: any of F32/F16/BF16 to any (round to nearest
// even; f32 -> f16 saturates to ±inf like __float2half_rn). src and dst must not overlap, except dst == src
// with identical types.
void convert(const void* src, DType src_t, void* dst, DType dst_t, int64_t n, cudaStream_t s);

// ---- Sampling on the device, one row of V logits per sequence (B rows, row-major [B, V]).

// out[b] = the lowest id with logits[b][id] == max (greedy, docs/sampling.md §1.2 step 2). -1 if the row holds a
// NaN or +inf, or is all -inf (the CPU sampler throws there; the caller checks for -1).
void argmax(const float* logits, int B, int V, int32_t* out, cudaStream_t s);

// Per-row sampling parameters, in device memory so a captured graph can change them between replays.
struct DeviceSamplerParams {
    float temperature;  // >= 0; 0 = greedy (argmax)
    float top_p;        // [0, 1]
    int32_t top_k;      // 0 or >= V: off
    float min_p;        // [0, 1]; 0: off
};

// Penalties/bans/bias on the device: one thread applies the edits in list order, so the rounding is the CPU's.
// op 0: logits[row][id] = value (bans use -inf); op 1: += value (bias); op 2: -= value (penalties, computed in
// double on the host and rounded to float, as the CPU sampler does).
struct LogitEdit {
    int32_t row, id;
    float value;
    int32_t op;
};
// Applies edits[0 .. *n_edits) (n_edits in device memory; at most max_edits are read).
void apply_logit_edits(float* logits, int V, const LogitEdit* edits, const int32_t* n_edits, int max_edits,
                       cudaStream_t s);

// The CPU sampler's select() (docs/sampling.md §1.2: softmax weights w = exp(l - max), top-p on the untempered
// order with ties at the cutoff kept, top-k with lower ids winning ties, min-p, then temperature as w^(1/T),
// then a proportional draw with u) for each row b, with u[b] uniform in [0, 1) from the host RNG (double, device
// memory) and params[b] (device memory). out[b] = token, or -1 for a NaN/+inf logit or an all -inf row.
// Same survivors and the same token as the CPU sampler except when a cut or the draw falls within rounding of
// a boundary: masses are summed in fixed point, 2^-46 at V = 65536 (deterministic, no float atomics), the draw in
// double.
// workspace: sample_workspace_bytes(B, V) bytes of device memory (float weights per row).
size_t sample_workspace_bytes(int B, int V);
void sample(const float* logits, int B, int V, const DeviceSamplerParams* params, const double* u, int32_t* out,
            void* workspace, size_t workspace_bytes, cudaStream_t s);

}  // namespace rwkv::cuda
