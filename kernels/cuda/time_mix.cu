// The RWKV-7 time-mix core on the GPU (kernels/time_mix.h is the specification, kernels/cpu/time_mix.cpp the twin).
// Layouts: activations [B·T, C] fp32 row-major (row b·T + t), heads of N = 64 consecutive channels; state per
// sequence [H][64][64] fp32, S[h][i = value row][j = key column], row-major.
//
// key_prep         one warp per (token, head); lane l owns channels j = l and l + 32 of the head. κ̂ = k ⊙ k_k
//                  normalised by a warp-shuffle sum of squares (eps 1e-12), then k' and v' in place.
//                  Bytes: reads 5·T·C·4 (+ k_k, k_a), writes 3·T·C·4.
// wkv7 (decode)    T == 1 (any T works, used for T == 1). Grid B·H·4 blocks of 4 warps; block (b, h, g) owns
//                  state rows 16g .. 16g+15 of head h, warp w rows 16g + 4w .. +3. Lane l holds S[i][l] and
//                  S[i][l+32] of its 4 rows in registers (coalesced 128-byte loads/stores of each row, no transpose
//                  needed). Per token: sa_i and y_i are warp butterfly sums (4 rows interleaved for ILP); the
//                  per-token vectors r, w, k', κ̂, a are read by each lane for its two columns (coalesced; the 16
//                  warps of a head share them through L1/L2), v_i is a broadcast load.
//                  Bytes: state 2·B·H·64·64·4 (read + write), vectors 6·B·C·4, y B·C·4. B·H·16 warps: 1024 warps
//                  for a 7.2B model at batch 1, so the GPU is full even at B = 1.
// wkv7 (sequence)  T > 1: same mapping and the same per-token arithmetic (one __device__ function with explicit
//                  __fmaf_rn/__fmul_rn, so no contraction difference can creep in: T one-token calls == one T-token
//                  call, bitwise). The state stays in registers for all T tokens. The vectors of kChunk = 16
//                  tokens (r, w, k', κ̂, a for the head: 16·5·64 floats, and v for the block's 16 rows) are copied
//                  into shared memory with cp.async, double-buffered: chunk c+1 is in flight while chunk c is
//                  computed, two barriers per 16 tokens (data landed; buffer free).
//                  Bytes: state 2·B·H·16 KB once, vectors 6·B·T·C·4 (each read by the 4 blocks of a head, L2 hits
//                  after the first), y B·T·C·4. Latency-bound in T (two 5-step shuffle reductions per token);
//                  B·H·4 blocks. The chunked (tensor-core) formulation is future work.
// time_mix_output  one warp per (token, head): GroupNorm statistics (two-pass, fp32, eps 64e-5) and the bonus
//                  Σ r k' r_k by warp shuffles; out may equal y. Bytes: reads 5·T·C·4, writes T·C·4.
#include <cuda_pipeline.h>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/launch.h"

namespace rwkv::cuda {
namespace {

using detail::ceil_div;
using detail::warp_sum;
constexpr int N = kHeadSize;  // 64

// ---------------------------------------------------------------------------------------------------- key_prep

__global__ void key_prep_kernel(KeyPrepArgs a, int H) {
    const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (warp >= int64_t(a.T) * H) return;  // whole warps exit together
    const int64_t t = warp / H;
    const int h = int(warp % H);
    const int64_t base = t * a.C + int64_t(h) * N;
    const int j0 = h * N + lane, j1 = j0 + 32;
    const int64_t e0 = base + lane, e1 = e0 + 32;
    const float k0 = a.k[e0], k1 = a.k[e1];
    float kk0 = k0 * a.k_k[j0], kk1 = k1 * a.k_k[j1];
    const float n2 = warp_sum(kk0 * kk0 + kk1 * kk1);
    const float norm = sqrtf(n2);
    const float inv = 1.0f / (norm < kL2NormEps ? kL2NormEps : norm);  // std::max as the twin: a NaN propagates
    a.kk[e0] = kk0 * inv;
    a.kk[e1] = kk1 * inv;
    a.k[e0] = k0 * (1.0f + (a.a[e0] - 1.0f) * a.k_a[j0]);
    a.k[e1] = k1 * (1.0f + (a.a[e1] - 1.0f) * a.k_a[j1]);
    if (a.v_gate) {
        const float v0 = a.v[e0], v1 = a.v[e1];
        a.v[e0] = v0 + (a.v_first[e0] - v0) * a.v_gate[e0];
        a.v[e1] = v1 + (a.v_first[e1] - v1) * a.v_gate[e1];
    }
}

// -------------------------------------------------------------------------------------------------------- wkv7

constexpr int kRowsPerWarp = 4;
constexpr int kWarpsPerBlock = 4;
constexpr int kRowsPerBlock = kRowsPerWarp * kWarpsPerBlock;  // 16
constexpr int kBlocksPerHead = N / kRowsPerBlock;             // 4
constexpr int kWkvThreads = 32 * kWarpsPerBlock;              // 128
constexpr int kChunk = 16;                                    // tokens per shared-memory stage (sequence kernel)

// The per-token vectors one lane needs: its two columns j = lane, lane + 32.
struct Cols {
    float r[2], w[2], k[2], kk[2], a[2];
};

// One token of rwkv7.md §2.2 step 11 for a warp's 4 rows. s[row][c]: S[i][lane + 32c]. Returns y for the rows
// (every lane holds all 4 sums). Explicit rounding intrinsics: the same bits wherever this is inlined.
__device__ __forceinline__ void wkv_token(float (&s)[kRowsPerWarp][2], const Cols& c, const float (&v)[kRowsPerWarp],
                                          float (&y)[kRowsPerWarp]) {
    const float b0 = __fmul_rn(c.kk[0], c.a[0]), b1 = __fmul_rn(c.kk[1], c.a[1]);  // κ̂ ⊙ a
    float sa[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; r++) sa[r] = __fmaf_rn(s[r][1], -c.kk[1], __fmul_rn(s[r][0], -c.kk[0]));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; r++) sa[r] = __fadd_rn(sa[r], __shfl_xor_sync(detail::kFullMask, sa[r], o));
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; r++) {
        s[r][0] = __fmaf_rn(v[r], c.k[0], __fmaf_rn(sa[r], b0, __fmul_rn(s[r][0], c.w[0])));
        s[r][1] = __fmaf_rn(v[r], c.k[1], __fmaf_rn(sa[r], b1, __fmul_rn(s[r][1], c.w[1])));
        y[r] = __fmaf_rn(s[r][1], c.r[1], __fmul_rn(s[r][0], c.r[0]));
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; r++) y[r] = __fadd_rn(y[r], __shfl_xor_sync(detail::kFullMask, y[r], o));
}

struct WkvPlace {
    int b, h, row0;  // row0: first of the warp's 4 rows
    float* S;        // this head's state
};

__device__ __forceinline__ WkvPlace wkv_place(const Wkv7Args& a) {
    WkvPlace p;
    const int bh = blockIdx.x / kBlocksPerHead, g = blockIdx.x % kBlocksPerHead;
    p.b = bh / a.H;
    p.h = bh % a.H;
    p.row0 = g * kRowsPerBlock + (threadIdx.x >> 5) * kRowsPerWarp;
    p.S = a.state[p.b] + int64_t(p.h) * N * N;
    return p;
}

__device__ __forceinline__ void load_state(const float* S, int row0, int lane, float (&s)[kRowsPerWarp][2]) {
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; r++) {
        s[r][0] = S[(row0 + r) * N + lane];
        s[r][1] = S[(row0 + r) * N + lane + 32];
    }
}
__device__ __forceinline__ void store_state(float* S, int row0, int lane, const float (&s)[kRowsPerWarp][2]) {
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; r++) {
        S[(row0 + r) * N + lane] = s[r][0];
        S[(row0 + r) * N + lane + 32] = s[r][1];
    }
}
// Lane r (< 4) writes row row0 + r of y.
__device__ __forceinline__ void store_y(float* y, int lane, const float (&yv)[kRowsPerWarp]) {
    float mine = yv[0];
#pragma unroll
    for (int r = 1; r < kRowsPerWarp; r++) mine = lane == r ? yv[r] : mine;
    if (lane < kRowsPerWarp) y[lane] = mine;
}

// Decode: vectors read straight from global memory (one token per sequence in practice).
__global__ void __launch_bounds__(kWkvThreads) wkv7_decode_kernel(Wkv7Args a) {
    const WkvPlace p = wkv_place(a);
    const int lane = threadIdx.x & 31, C = a.H * N;
    float s[kRowsPerWarp][2];
    load_state(p.S, p.row0, lane, s);
    for (int t = 0; t < a.T; t++) {
        const int64_t o = (int64_t(p.b) * a.T + t) * C + int64_t(p.h) * N;
        Cols c;
#pragma unroll
        for (int q = 0; q < 2; q++) {
            const int64_t e = o + lane + 32 * q;
            c.r[q] = a.r[e], c.w[q] = a.w[e], c.k[q] = a.k[e], c.kk[q] = a.kk[e], c.a[q] = a.a[e];
        }
        float v[kRowsPerWarp], y[kRowsPerWarp];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; r++) v[r] = a.v[o + p.row0 + r];
        wkv_token(s, c, v, y);
        store_y(a.y + o + p.row0, lane, y);
    }
    store_state(p.S, p.row0, lane, s);
}

// Shared-memory stage of kChunk tokens: the head's r, w, k', κ̂, a and the block's 16 values of v.
struct Stage {
    float vec[5][kChunk][N];  // 0 r, 1 w, 2 k, 3 kk, 4 a
    float v[kChunk][kRowsPerBlock];
};

// Issues the asynchronous copies of tokens [t0, t0 + n) into st (4-byte cp.async: any alignment works).
__device__ __forceinline__ void stage_chunk(const Wkv7Args& a, int b, int h, int block_row0, int t0, int n, Stage& st) {
    const int C = a.H * N;
    for (int e = threadIdx.x; e < 5 * kChunk * N; e += kWkvThreads) {
        const int which = e / (kChunk * N), tt = (e / N) % kChunk, j = e % N;
        const float* src = which == 0 ? a.r : which == 1 ? a.w : which == 2 ? a.k : which == 3 ? a.kk : a.a;
        if (tt < n)
            __pipeline_memcpy_async(&st.vec[which][tt][j], src + (int64_t(b) * a.T + t0 + tt) * C + int64_t(h) * N + j,
                                    4);
    }
    for (int e = threadIdx.x; e < kChunk * kRowsPerBlock; e += kWkvThreads) {
        const int tt = e / kRowsPerBlock, i = e % kRowsPerBlock;
        if (tt < n)
            __pipeline_memcpy_async(&st.v[tt][i],
                                    a.v + (int64_t(b) * a.T + t0 + tt) * C + int64_t(h) * N + block_row0 + i, 4);
    }
    __pipeline_commit();
}

__global__ void __launch_bounds__(kWkvThreads) wkv7_sequence_kernel(Wkv7Args a) {
    __shared__ Stage stage[2];  // 2 × 21.5 KB
    const WkvPlace p = wkv_place(a);
    const int lane = threadIdx.x & 31, C = a.H * N;
    const int block_row0 = (blockIdx.x % kBlocksPerHead) * kRowsPerBlock;
    const int wrow = p.row0 - block_row0;  // the warp's first row inside the block's 16
    float s[kRowsPerWarp][2];
    load_state(p.S, p.row0, lane, s);
    const int n_chunks = (a.T + kChunk - 1) / kChunk;
    stage_chunk(a, p.b, p.h, block_row0, 0, min(kChunk, a.T), stage[0]);
    for (int ch = 0; ch < n_chunks; ch++) {
        const int t0 = ch * kChunk, n = min(kChunk, a.T - t0);
        if (ch + 1 < n_chunks) {
            stage_chunk(a, p.b, p.h, block_row0, t0 + kChunk, min(kChunk, a.T - t0 - kChunk), stage[(ch + 1) & 1]);
            __pipeline_wait_prior(1);  // chunk ch has landed; ch + 1 may still be in flight
        } else {
            __pipeline_wait_prior(0);
        }
        __syncthreads();
        const Stage& st = stage[ch & 1];
        for (int tt = 0; tt < n; tt++) {
            Cols c;
#pragma unroll
            for (int q = 0; q < 2; q++) {
                const int j = lane + 32 * q;
                c.r[q] = st.vec[0][tt][j], c.w[q] = st.vec[1][tt][j], c.k[q] = st.vec[2][tt][j];
                c.kk[q] = st.vec[3][tt][j], c.a[q] = st.vec[4][tt][j];
            }
            float v[kRowsPerWarp], y[kRowsPerWarp];
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; r++) v[r] = st.v[tt][wrow + r];
            wkv_token(s, c, v, y);
            store_y(a.y + (int64_t(p.b) * a.T + t0 + tt) * C + int64_t(p.h) * N + p.row0, lane, y);
        }
        __syncthreads();  // everyone is done with stage[ch & 1] before it is refilled (chunk ch + 2)
    }
    store_state(p.S, p.row0, lane, s);
}

// --------------------------------------------------------------------------------------------- time_mix_output

__global__ void time_mix_output_kernel(TimeMixOutputArgs a) {
    const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (warp >= int64_t(a.T) * a.H) return;
    const int C = a.H * N;
    const int64_t t = warp / a.H;
    const int h = int(warp % a.H);
    const int c0 = h * N + lane, c1 = c0 + 32;
    const int64_t e0 = t * C + c0, e1 = e0 + 32;
    const float y0 = a.y[e0], y1 = a.y[e1];
    const float mean = warp_sum(y0 + y1) * (1.0f / N);
    const float d0 = y0 - mean, d1 = y1 - mean;
    const float var = warp_sum(d0 * d0 + d1 * d1) * (1.0f / N);
    const float inv = 1.0f / sqrtf(var + kGroupNormEps);
    const float bonus = warp_sum(a.r[e0] * a.k[e0] * a.r_k[c0] + a.r[e1] * a.k[e1] * a.r_k[c1]);
    const float gn0 = d0 * inv * a.ln_x_w[c0] + a.ln_x_b[c0];
    const float gn1 = d1 * inv * a.ln_x_w[c1] + a.ln_x_b[c1];
    const float o0 = (gn0 + bonus * a.v[e0]) * a.g[e0];
    const float o1 = (gn1 + bonus * a.v[e1]) * a.g[e1];
    a.out[e0] = o0;  // out may equal y: both values of this lane were read above, and no lane reads another's
    a.out[e1] = o1;
}

constexpr int kWarpKernelThreads = 256;

}  // namespace

void key_prep(const KeyPrepArgs& a, cudaStream_t s) {
    if (a.T == 0) return;
    if (a.C % N != 0) throw Error(RWKV_STATUS_INTERNAL, "cuda::key_prep: C is not a multiple of 64");
    if ((a.v_first == nullptr) != (a.v_gate == nullptr))
        throw Error(RWKV_STATUS_INTERNAL, "cuda::key_prep: v_first and v_gate must be both set or both null");
    const int H = a.C / N;
    key_prep_kernel<<<ceil_div(int64_t(a.T) * H * 32, kWarpKernelThreads), kWarpKernelThreads, 0, s>>>(a, H);
    RWKV_CUDA_CHECK_LAUNCH("key_prep");
}

void wkv7(const Wkv7Args& a, cudaStream_t s) {
    if (a.B == 0 || a.T == 0 || a.H == 0) return;
    const unsigned blocks = unsigned(int64_t(a.B) * a.H * kBlocksPerHead);
    if (a.T == 1) {
        wkv7_decode_kernel<<<blocks, kWkvThreads, 0, s>>>(a);
        RWKV_CUDA_CHECK_LAUNCH("wkv7 (decode)");
    } else {
        wkv7_sequence_kernel<<<blocks, kWkvThreads, 0, s>>>(a);
        RWKV_CUDA_CHECK_LAUNCH("wkv7 (sequence)");
    }
}

void time_mix_output(const TimeMixOutputArgs& a, cudaStream_t s) {
    if (a.T == 0 || a.H == 0) return;
    time_mix_output_kernel<<<ceil_div(int64_t(a.T) * a.H * 32, kWarpKernelThreads), kWarpKernelThreads, 0, s>>>(a);
    RWKV_CUDA_CHECK_LAUNCH("time_mix_output");
}

}  // namespace rwkv::cuda
