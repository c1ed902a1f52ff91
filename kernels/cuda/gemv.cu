// GEMV for small T (1 <= T <= kMaxGemvT = 8): Y[T, n_out] (=|+=) X[T, n_in] · Wᵀ, weights f16/bf16/f32 in the
// checkpoint's layout, converted to fp32 in registers, fp32 accumulation. Bandwidth-bound: each weight byte is
// read once per call; X (T·n_in·4 bytes) comes from L1/L2.
//
// OutIn (element (o, i) at o·n_in + i; nn.Linear: r/k/v/o, ffn_key, head, HF LoRAs)
//   Warp per row (block of 4 warps = 4 rows; 2 rows per warp for T >= 4, so each activation read serves two rows)
//   when n_out >= 1024; block per row (4 warps split the row 4-way, interleaved by 256-element chunks, combined in
//   shared memory in a fixed order) when n_out < 1024, so small matrices still spread over the GPU. Lane l reads 8
//   consecutive weights (one 16-byte load for f16/bf16) at elements 8·(l + 32·m), 4 such loads in flight per lane, and
//   the matching 8 activations of each of the T rows (two float4). Per lane fp32 accumulators acc[t]; warp butterfly
//   sum. Requires n_in % 8 == 0 and 16-byte aligned W and X; otherwise the fallback kernel. Bytes: n_out·n_in·|w|
//   weights + T·n_in·4 activations (L1/L2) + T·n_out·4 output.
// InOut (element (o, i) at i·n_out + o; native LoRAs w1/a1/g1/v1 [C, D] and w2/... [D, C], ffn_value stored [F, C])
//   Grid = column tiles × hidden tiles. A column tile is LPR·8 outputs (LPR = lanes per row: 4..32, the smallest
//   that covers n_out, so narrow LoRA matrices do not idle lanes); lane (g, c) of a warp owns outputs c·8 .. c·8+7
//   of the tile (one 16-byte load per weight row) and group g = lane / LPR takes the rows ≡ g (mod 32/LPR) of the
//   warp's chunks. A hidden tile is 8 warps × RW rows; warp w owns RW consecutive input rows, examined 32 at a time:
//   each lane tests one row (x[t][i] != 0 for some t when sparse_input, always true otherwise), __ballot_sync gives
//   the mask of rows to read (4 chunks' tests issued together), and each group walks its bits in increasing order
//   across the chunks (4 rows' loads in flight). Only the
//   rows in the mask are read: with sparse_input the zero rows of a ReLU² activation are skipped (lossless: their
//   products are exact zeros), and since the partition and the order of the remaining rows are the same in both
//   modes, sparse and dense give bitwise-identical results. Groups are combined by shuffles, warps through shared
//   memory in a fixed order; with one hidden tile the block writes Y, otherwise a partial [hidden tile][T][n_out]
//   to the workspace that gemv_reduce_kernel sums in tile order (deterministic: no atomics).
//   RW (8..1024) and LPR depend only on (n_out, n_in): about 256 blocks when the shape allows, at most 64 hidden
//   tiles. Requires n_out % 8 == 0 and 16-byte aligned W; otherwise the fallback kernel.
//   Bytes: (rows read)·n_out·|w| + T·n_in·4 + (hidden tiles > 1 ? 2·tiles·T·n_out·4 : 0) + T·n_out·4.
// Fallback (any shape, any alignment): OutIn warp per row with scalar loads; InOut thread per output column.
#include <algorithm>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/launch.h"

namespace rwkv::cuda {
namespace {

using detail::ceil_div;
using detail::kFullMask;
using detail::load8_f32;
using detail::warp_sum;
using detail::WeightTraits;

constexpr int kUnroll = 4;  // independent 16-byte weight loads in flight per lane

// ----------------------------------------------------------------------------------------------------- OutIn

constexpr int kOutInThreads = 128;  // 4 warps

// WPR = warps per row: 1 (warp per row(s), 4 warps per block) or 4 (block per row). RPW = rows per warp (WPR = 1):
// 2 for T >= 4, so each activation vector read from L1 serves two weight rows (at T = 8 the activation traffic
// would otherwise be 16× the weight traffic).
template <typename W, int TMAX, int WPR, int RPW>
__global__ void __launch_bounds__(kOutInThreads)
    gemv_out_in_kernel(const W* __restrict__ wt, const float* __restrict__ x, float* __restrict__ y, int n_out,
                       int n_in, int T, bool accumulate) {
    static_assert((WPR == 1 && (RPW == 1 || RPW == 2)) || (WPR == 4 && RPW == 1), "");
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int row0 = WPR == 1 ? (blockIdx.x * 4 + warp) * RPW : blockIdx.x;
    const int kw = WPR == 1 ? 0 : warp;  // this warp's share of the row
    bool active[RPW];                    // (WPR == 1 only) whole warps are inactive together
#pragma unroll
    for (int r = 0; r < RPW; r++) active[r] = row0 + r < n_out;
    float acc[RPW][TMAX];
#pragma unroll
    for (int r = 0; r < RPW; r++)
#pragma unroll
        for (int t = 0; t < TMAX; t++) acc[r][t] = 0.0f;
    if (active[0]) {
        const W* wr = wt + int64_t(row0) * n_in;
        const int nvec = n_in / 8;
        constexpr int kStep = 32 * WPR;
        for (int v0 = kw * 32 + lane; v0 < nvec; v0 += kStep * kUnroll) {
            float wf[kUnroll][RPW][8];
#pragma unroll
            for (int u = 0; u < kUnroll; u++) {
                const int v = v0 + u * kStep;
#pragma unroll
                for (int r = 0; r < RPW; r++)
                    if (v < nvec && active[r])
                        WeightTraits<W>::load8(wr + int64_t(r) * n_in + int64_t(v) * 8, wf[u][r]);
            }
#pragma unroll
            for (int u = 0; u < kUnroll; u++) {
                const int v = v0 + u * kStep;
                if (v < nvec) {
#pragma unroll
                    for (int t = 0; t < TMAX; t++) {
                        if (t < T) {
                            float xv[8];
                            load8_f32(x + int64_t(t) * n_in + int64_t(v) * 8, xv);
#pragma unroll
                            for (int r = 0; r < RPW; r++) {
                                if (active[r]) {
                                    float s = acc[r][t];
#pragma unroll
                                    for (int e = 0; e < 8; e++) s = fmaf(wf[u][r][e], xv[e], s);
                                    acc[r][t] = s;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < RPW; r++)
#pragma unroll
        for (int t = 0; t < TMAX; t++) acc[r][t] = warp_sum(acc[r][t]);
    if (WPR == 1) {
        if (lane == 0) {
#pragma unroll
            for (int r = 0; r < RPW; r++)
#pragma unroll
                for (int t = 0; t < TMAX; t++)
                    if (active[r] && t < T) {
                        float& out = y[int64_t(t) * n_out + row0 + r];
                        out = accumulate ? out + acc[r][t] : acc[r][t];
                    }
        }
    } else {
        __shared__ float part[4][TMAX];
        if (lane == 0)
#pragma unroll
            for (int t = 0; t < TMAX; t++) part[warp][t] = acc[0][t];
        __syncthreads();
        if (threadIdx.x < TMAX && int(threadIdx.x) < T) {
            const int t = threadIdx.x;
            const float sum = (part[0][t] + part[1][t]) + (part[2][t] + part[3][t]);
            float& out = y[int64_t(t) * n_out + row0];
            out = accumulate ? out + sum : sum;
        }
    }
}

// ----------------------------------------------------------------------------------------------------- InOut

constexpr int kInOutWarps = 8;
constexpr int kInOutThreads = 32 * kInOutWarps;
constexpr int kMaxHiddenTiles = 64;

struct InOutPlan {
    int lpr;           // lanes per row: 4, 8, 16 or 32
    int rw;            // rows per warp (8 .. 1024)
    int col_tiles;     // ceil(n_out / (lpr·8))
    int hidden_tiles;  // ceil(n_in / (8·rw))
};

InOutPlan plan_in_out(int n_out, int n_in) {
    InOutPlan p{};
    p.lpr = 32;
    while (p.lpr > 4 && (p.lpr / 2) * 8 >= n_out) p.lpr /= 2;
    p.col_tiles = int(ceil_div(n_out, int64_t(p.lpr) * 8));
    auto tiles = [&](int rw) { return int(ceil_div(n_in, int64_t(kInOutWarps) * rw)); };
    p.rw = 128;
    while (p.rw > 8 && int64_t(p.col_tiles) * tiles(p.rw) < 256) p.rw /= 2;
    while (tiles(p.rw) > kMaxHiddenTiles) p.rw *= 2;
    p.hidden_tiles = tiles(p.rw);
    return p;
}

// Rows of a 32-row chunk that group g (of G = 32 / LPR) takes: bits g, g + G, g + 2G, ...
template <int LPR>
__device__ __forceinline__ unsigned group_bits(int g) {
    constexpr int G = 32 / LPR;
    constexpr unsigned base = G == 1 ? 0xffffffffu : G == 2 ? 0x55555555u : G == 4 ? 0x11111111u : 0x01010101u;
    return base << g;
}

template <typename W, int TMAX, int LPR>
__global__ void __launch_bounds__(kInOutThreads)
    gemv_in_out_kernel(const W* __restrict__ wt, const float* __restrict__ x, float* __restrict__ y,
                       float* __restrict__ partial, int n_out, int n_in, int T, int rw, bool accumulate, bool sparse) {
    constexpr int kTile = LPR * 8;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane / LPR, c = lane % LPR;
    const int col = blockIdx.x * kTile + c * 8;  // first of this lane's 8 outputs
    const bool col_ok = col < n_out;             // n_out % 8 == 0: all 8 or none
    const int64_t warp_row0 = (int64_t(blockIdx.y) * kInOutWarps + warp) * rw;
    const unsigned my_bits = group_bits<LPR>(g);

    float acc[TMAX][8];
#pragma unroll
    for (int t = 0; t < TMAX; t++)
#pragma unroll
        for (int e = 0; e < 8; e++) acc[t][e] = 0.0f;

    // The warp's rows are examined in chunks of 32 (one ballot each), kSuper chunks at a time: their activation
    // loads are issued together, and the row stream runs across the chunk boundaries with kUnroll weight loads in
    // flight, so a sparse warp pays about one memory round trip per kSuper·32 rows instead of one per chunk.
    // Rows are consumed in increasing order in both modes (the accumulation order does not depend on `sparse`).
    constexpr int kSuper = 4;
    const int chunk = rw < 32 ? rw : 32;
    for (int r0 = 0; r0 < rw; r0 += kSuper * chunk) {
        const int64_t base = warp_row0 + r0;
        bool takes[kSuper];
#pragma unroll
        for (int q = 0; q < kSuper; q++) {
            const int64_t row = base + q * chunk + lane;
            const bool in_range = r0 + q * chunk < rw && lane < chunk && row < n_in;
            bool take = in_range;
            if (sparse && in_range) {
                take = false;
#pragma unroll
                for (int t = 0; t < TMAX; t++)
                    if (t < T) take |= __ldg(x + int64_t(t) * n_in + row) != 0.0f;
            }
            takes[q] = take;
        }
        unsigned m0 = __ballot_sync(kFullMask, takes[0]) & my_bits;
        unsigned m1 = __ballot_sync(kFullMask, takes[1]) & my_bits;
        unsigned m2 = __ballot_sync(kFullMask, takes[2]) & my_bits;
        unsigned m3 = __ballot_sync(kFullMask, takes[3]) & my_bits;
        static_assert(kSuper == 4, "four masks");
        if (!col_ok) m0 = m1 = m2 = m3 = 0;
        int64_t qbase = base;  // the row of bit 0 of m0
        while (m0 | m1 | m2 | m3) {
            int64_t rows[kUnroll];
            float wf[kUnroll][8];
#pragma unroll
            for (int u = 0; u < kUnroll; u++) {
                rows[u] = -1;
                while (m0 == 0 && (m1 | m2 | m3)) {  // move on to the next chunk
                    m0 = m1, m1 = m2, m2 = m3, m3 = 0;
                    qbase += chunk;
                }
                if (m0) {
                    rows[u] = qbase + (__ffs(m0) - 1);
                    m0 &= m0 - 1;
                    WeightTraits<W>::load8(wt + rows[u] * n_out + col, wf[u]);
                }
            }
#pragma unroll
            for (int u = 0; u < kUnroll; u++) {
                if (rows[u] >= 0) {
#pragma unroll
                    for (int t = 0; t < TMAX; t++) {
                        if (t < T) {
                            const float xv = __ldg(x + int64_t(t) * n_in + rows[u]);
#pragma unroll
                            for (int e = 0; e < 8; e++) acc[t][e] = fmaf(xv, wf[u][e], acc[t][e]);
                        }
                    }
                }
            }
        }
    }
    // Combine the groups of the warp (same columns), fixed butterfly order.
#pragma unroll
    for (int off = LPR; off < 32; off <<= 1)
#pragma unroll
        for (int t = 0; t < TMAX; t++)
#pragma unroll
            for (int e = 0; e < 8; e++) acc[t][e] += __shfl_xor_sync(kFullMask, acc[t][e], off);
    // Combine the warps through shared memory, warp 0 + 1 + ... + 7 in order.
    __shared__ float red[kInOutWarps][kTile];
    const int64_t n_hidden_tiles = gridDim.y;
#pragma unroll
    for (int t = 0; t < TMAX; t++) {
        if (t >= T) break;
        if (g == 0)
#pragma unroll
            for (int e = 0; e < 8; e++) red[warp][c * 8 + e] = acc[t][e];
        __syncthreads();
        if (threadIdx.x < kTile) {
            const int o = blockIdx.x * kTile + threadIdx.x;
            if (o < n_out) {
                float s = red[0][threadIdx.x];
#pragma unroll
                for (int w = 1; w < kInOutWarps; w++) s += red[w][threadIdx.x];
                if (n_hidden_tiles == 1) {
                    float& out = y[int64_t(t) * n_out + o];
                    out = accumulate ? out + s : s;
                } else {
                    partial[(int64_t(blockIdx.y) * T + t) * n_out + o] = s;
                }
            }
        }
        __syncthreads();
    }
}

// y[t][o] (=|+=) Σ_tile partial[tile][t][o], tiles in order.
__global__ void gemv_reduce_kernel(const float* __restrict__ partial, float* __restrict__ y, int n_out, int T,
                                   int tiles, bool accumulate) {
    const int64_t n = int64_t(T) * n_out;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
        float s = partial[e];
        for (int k = 1; k < tiles; k++) s += partial[int64_t(k) * n + e];
        y[e] = accumulate ? y[e] + s : s;
    }
}

// ---------------------------------------------------------------------------------------------------- fallback

template <typename W>
__global__ void gemv_out_in_fallback(const W* __restrict__ wt, const float* __restrict__ x, float* __restrict__ y,
                                     int n_out, int n_in, int T, bool accumulate) {
    const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (row >= n_out) return;
    const W* wr = wt + row * n_in;
    for (int t = 0; t < T; t++) {
        float s = 0.0f;
        for (int i = lane; i < n_in; i += 32) s = fmaf(WeightTraits<W>::load1(wr + i), x[int64_t(t) * n_in + i], s);
        s = warp_sum(s);
        if (lane == 0) {
            float& out = y[int64_t(t) * n_out + row];
            out = accumulate ? out + s : s;
        }
    }
}

template <typename W>
__global__ void gemv_in_out_fallback(const W* __restrict__ wt, const float* __restrict__ x, float* __restrict__ y,
                                     int n_out, int n_in, int T, bool accumulate) {
    const int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (o >= n_out) return;
    float acc[kMaxGemvT];
#pragma unroll
    for (int t = 0; t < kMaxGemvT; t++) acc[t] = 0.0f;
    for (int i = 0; i < n_in; i++) {
        const float w = WeightTraits<W>::load1(wt + int64_t(i) * n_out + o);
#pragma unroll
        for (int t = 0; t < kMaxGemvT; t++)
            if (t < T) acc[t] = fmaf(w, x[int64_t(t) * n_in + i], acc[t]);
    }
#pragma unroll
    for (int t = 0; t < kMaxGemvT; t++)
        if (t < T) {
            float& out = y[int64_t(t) * n_out + o];
            out = accumulate ? out + acc[t] : acc[t];
        }
}

// ---------------------------------------------------------------------------------------------------- dispatch

bool use_in_out_vector(const WeightMatrix& w, const float* x) {
    (void)x;  // InOut reads x element by element: any alignment
    return w.n_out % 8 == 0 && detail::aligned16(w.data);
}
bool use_out_in_vector(const WeightMatrix& w, const float* x) {
    return w.n_in % 8 == 0 && detail::aligned16(w.data) && detail::aligned16(x);
}

template <typename W, int TMAX>
void launch_out_in(const MatmulArgs& a, cudaStream_t s) {
    const WeightMatrix& w = *a.w;
    const W* wt = static_cast<const W*>(w.data);
    if (w.n_out >= 1024) {
        constexpr int rpw = TMAX >= 4 ? 2 : 1;
        gemv_out_in_kernel<W, TMAX, 1, rpw>
            <<<ceil_div(w.n_out, 4 * rpw), kOutInThreads, 0, s>>>(wt, a.x, a.y, w.n_out, w.n_in, a.T, a.accumulate);
    } else {
        gemv_out_in_kernel<W, TMAX, 4, 1>
            <<<unsigned(w.n_out), kOutInThreads, 0, s>>>(wt, a.x, a.y, w.n_out, w.n_in, a.T, a.accumulate);
    }
}

template <typename W, int TMAX>
void launch_in_out(const MatmulArgs& a, bool sparse, float* ws, cudaStream_t s) {
    const WeightMatrix& w = *a.w;
    const W* wt = static_cast<const W*>(w.data);
    const InOutPlan p = plan_in_out(w.n_out, w.n_in);
    const dim3 grid(unsigned(p.col_tiles), unsigned(p.hidden_tiles));
    auto go = [&](auto kernel) {
        kernel<<<grid, kInOutThreads, 0, s>>>(wt, a.x, a.y, ws, w.n_out, w.n_in, a.T, p.rw, a.accumulate, sparse);
    };
    switch (p.lpr) {
        case 4:
            go(gemv_in_out_kernel<W, TMAX, 4>);
            break;
        case 8:
            go(gemv_in_out_kernel<W, TMAX, 8>);
            break;
        case 16:
            go(gemv_in_out_kernel<W, TMAX, 16>);
            break;
        default:
            go(gemv_in_out_kernel<W, TMAX, 32>);
            break;
    }
    if (p.hidden_tiles > 1) {
        RWKV_CUDA_CHECK_LAUNCH("gemv (InOut)");
        const int64_t n = int64_t(a.T) * w.n_out;
        gemv_reduce_kernel<<<std::min<unsigned>(ceil_div(n, 256), 4096), 256, 0, s>>>(ws, a.y, w.n_out, a.T,
                                                                                      p.hidden_tiles, a.accumulate);
    }
}

template <typename W>
void launch_typed(const MatmulArgs& a, bool sparse, float* ws, cudaStream_t s) {
    const WeightMatrix& w = *a.w;
    const W* wt = static_cast<const W*>(w.data);
    const bool out_in = w.layout == WeightMatrix::Layout::OutIn;
    if (out_in ? !use_out_in_vector(w, a.x) : !use_in_out_vector(w, a.x)) {
        if (out_in)
            gemv_out_in_fallback<W>
                <<<ceil_div(int64_t(w.n_out) * 32, 256), 256, 0, s>>>(wt, a.x, a.y, w.n_out, w.n_in, a.T, a.accumulate);
        else
            gemv_in_out_fallback<W>
                <<<ceil_div(w.n_out, 128), 128, 0, s>>>(wt, a.x, a.y, w.n_out, w.n_in, a.T, a.accumulate);
        return;
    }
    const int tmax = a.T <= 1 ? 1 : a.T <= 2 ? 2 : a.T <= 4 ? 4 : 8;
    switch (tmax) {
        case 1:
            out_in ? launch_out_in<W, 1>(a, s) : launch_in_out<W, 1>(a, sparse, ws, s);
            break;
        case 2:
            out_in ? launch_out_in<W, 2>(a, s) : launch_in_out<W, 2>(a, sparse, ws, s);
            break;
        case 4:
            out_in ? launch_out_in<W, 4>(a, s) : launch_in_out<W, 4>(a, sparse, ws, s);
            break;
        default:
            out_in ? launch_out_in<W, 8>(a, s) : launch_in_out<W, 8>(a, sparse, ws, s);
            break;
    }
}

}  // namespace

size_t gemv_workspace_bytes(const WeightMatrix& w, int T) {
    if (w.layout == WeightMatrix::Layout::OutIn || w.n_out % 8 != 0) return 0;  // (fallback needs none either)
    const InOutPlan p = plan_in_out(w.n_out, w.n_in);
    return p.hidden_tiles > 1 ? size_t(p.hidden_tiles) * size_t(std::max(T, 1)) * size_t(w.n_out) * sizeof(float) : 0;
}

void gemv(const MatmulArgs& a, bool sparse_input, float* workspace, size_t workspace_bytes, cudaStream_t s) {
    const WeightMatrix& w = *a.w;
    if (a.T <= 0 || w.n_out <= 0) return;
    if (a.T > kMaxGemvT) throw Error(RWKV_STATUS_INTERNAL, "cuda::gemv: T = " + std::to_string(a.T) + " > kMaxGemvT");
    if (w.n_in <= 0) {  // an empty product: y = 0 or unchanged
        if (!a.accumulate) RWKV_CUDA_CHECK(cudaMemsetAsync(a.y, 0, size_t(a.T) * size_t(w.n_out) * sizeof(float), s));
        return;
    }
    const size_t need =
        w.layout == WeightMatrix::Layout::InOut && use_in_out_vector(w, a.x) ? gemv_workspace_bytes(w, a.T) : 0;
    if (need > 0 && (workspace == nullptr || workspace_bytes < need))
        throw Error(RWKV_STATUS_INTERNAL, "cuda::gemv: workspace of " + std::to_string(workspace_bytes) +
                                              " bytes, need " + std::to_string(need));
    switch (w.dtype) {
        case DType::F32:
            launch_typed<float>(a, sparse_input, workspace, s);
            break;
        case DType::F16:
            launch_typed<__half>(a, sparse_input, workspace, s);
            break;
        case DType::BF16:
            launch_typed<__nv_bfloat16>(a, sparse_input, workspace, s);
            break;
    }
    RWKV_CUDA_CHECK_LAUNCH("gemv");
}

}  // namespace rwkv::cuda
