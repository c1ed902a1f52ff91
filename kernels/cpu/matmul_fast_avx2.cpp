// AVX2 kernels of the fast CPU matmul, Y[T, n_out] (=|+=) X[T, n_in] · Wᵀ (kernels/cpu/matmul_fast.h), for x86-64
// CPUs with AVX2 + FMA + F16C. Same design as matmul_fast_avx512.cpp with 8 fp32 lanes and 16 vector registers;
// every function that uses AVX2 carries RWKV_AVX2 (a target attribute), and the dispatcher only calls in here when
// cpu_isa_supported(CpuIsa::Avx2). Design and measurements: docs/cpu-kernels.md.
//
// Blocks of k: 8 k (one vector) for f32 and f16, 16 k for bf16 (a 32-byte load split by a shift and a mask into
// the even-k and the odd-k weights). X is copied into the same block order, zero-padded to whole blocks, so every
// output element is summed the same way in every path: lane l of one 8-lane accumulator takes the products of its
// block positions in block order with FMA, then hsum() adds the lanes in a fixed tree. Decode and prefill, and any
// number of threads, give bitwise-identical results.
//
// OutIn (W[o, k] at o * n_in + k):
//   - decode, T ≤ kMaxDirectT: dot_tile<D, R, TT> on the weights in place, 8 rows × 1 token or 4 rows × 2 tokens
//     (≤ 8 accumulators + x + weights in 16 registers), tokens in chunks so each weight comes from memory once; a
//     thread reads its rows as R sections side by side (R long sequential streams for the hardware prefetcher),
//     each also prefetched kPrefetchBytes ahead into L2.
//   - prefill: panels converted to fp32 and packed (groups of 4 rows, tiles of 3 tokens, interleaved per 8-k step);
//     packed_tile runs 4 × 3 = 12 accumulators + 3 x + 1 weight register. Its 7 loads per 12 FMAs would stream
//     from L2 for long rows, so k goes in blocks of kKBlockSteps steps: the X tile's block stays in L1 while the
//     panel's groups pass, the accumulators are parked in `carry` between blocks (exact: same operations).
//
// InOut, one token (decode): passes of 64 columns over only the rows whose x[k] is not zero (in_out_rows, the sparse
// ReLU² FFN; bitwise the same FMA chains as the tiles below without their exact-zero terms).
// InOut (W[o, k] at k * n_out + o): tiles of 32 columns × 2 tokens in work items of one column block × 64 tokens
// (column-block-major; above one token tile each thread packs its block as contiguous fp32 first, in_out_pack),
// axpy over k; the last partial vector of a row goes through a zero-padded copy. One FMA chain per element, k
// increasing.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <vector>

#include "common/thread_pool.h"
#include "kernels/cpu/matmul_fast.h"
#include "kernels/cpu/matmul_fast_shared.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>

#define RWKV_AVX2 __attribute__((target("avx2,fma,f16c")))
#define RWKV_AVX2_INLINE RWKV_AVX2 inline __attribute__((always_inline))

namespace rwkv::detail {
namespace {

constexpr int kLanes = 8;
constexpr int kMaxDirectT = 16;             // decode tiles (weights in place) up to this many tokens ...
constexpr int kDirectTokens = 2;            // ... taken this many at a time
constexpr int kGemmRows = 4;                // prefill tile: rows ...
constexpr int kGemmTokens = 3;              // ... × tokens
constexpr int kKBlockSteps = 64;            // prefill: k blocks of 64 steps (512 k) for longer rows
constexpr int64_t kPanelBytes = 256 << 10;  // prefill: packed fp32 panel per thread, at most (stays in L2) ...
constexpr int kMaxPanelRows = 32;           // ... and at most this many rows
constexpr int64_t kXChunkBytes = 4 << 20;   // prefill: tokens per pass, at most this much packed X
constexpr int kInOutCols = 32;              // InOut tile: columns (4 vectors) ...
constexpr int kInOutTokens = 2;             // ... × tokens
constexpr int kInOutChunk = 64;             // InOut work item: one column block × this many tokens
constexpr int kRowCols = 64;                // InOut, one token: columns (8 vectors) per pass over the rows
constexpr int kRowAhead = 8;                // ... prefetching the row this many listed rows ahead
constexpr int64_t kSmallWork = 1 << 16;     // multiply-adds below which one thread does the whole call

template <DType D>
using Elem = std::conditional_t<D == DType::F32, float, uint16_t>;

// Vectors of 8 weights per block of k, and k per block.
template <DType D>
constexpr int kBlockVecs = D == DType::BF16 ? 2 : 1;
template <DType D>
constexpr int kBlockK = D == DType::BF16 ? 2 * kLanes : kLanes;
constexpr int kPrefetchBytes = 2048;  // decode: prefetch distance ahead of each row stream, into L2

// 8 consecutive weights as fp32. f16 → fp32 (vcvtph2ps) and bf16 → fp32 (shift into the upper half) are exact.
template <DType D>
RWKV_AVX2_INLINE __m256 load8(const Elem<D>* p) {
    if constexpr (D == DType::F32) {
        return _mm256_loadu_ps(p);
    } else {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        if constexpr (D == DType::F16) return _mm256_cvtph_ps(h);
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
}

// The first n < 8 elements, zero in the other lanes (which are not read), through a zero-padded copy.
template <DType D>
RWKV_AVX2_INLINE __m256 load8(const Elem<D>* p, int n) {
    alignas(32) Elem<D> buf[kLanes] = {};
    for (int i = 0; i < n; i++) buf[i] = p[i];
    return load8<D>(buf);
}

// The weights of one block as fp32 (exact conversions). Full: all kBlockK<D> elements; otherwise the first `valid`
// (the others are zero and not read).
template <DType D, bool Full>
RWKV_AVX2_INLINE void load_block(const Elem<D>* p, int valid, __m256* out) {
    if constexpr (D == DType::BF16) {
        // 16 bf16 as 8 dwords: the low half of dword l is k = 2l, the high half k = 2l + 1. bf16 is the top half
        // of an fp32, so (dword << 16) is w[2l] and (dword & 0xffff0000) is w[2l + 1].
        __m256i v;
        if constexpr (Full) {
            v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
        } else {
            alignas(32) uint16_t buf[2 * kLanes] = {};
            for (int i = 0; i < valid; i++) buf[i] = p[i];
            v = _mm256_load_si256(reinterpret_cast<const __m256i*>(buf));
        }
        out[0] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
        out[1] = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(int(0xffff0000u))));
    } else {
        out[0] = Full ? load8<D>(p) : load8<D>(p, valid);
    }
}

// x (n floats) in block order for dtype D, zero-padded to n_pad (a multiple of kBlockK<D>): the 8 floats of step s
// go to out + s * step_stride (8 for a plain row, 8 · tt inside a packed X tile).
template <DType D>
RWKV_AVX2 void x_in_block_order(const float* x, int n, int n_pad, float* out, int64_t step_stride) {
    for (int k = 0, s = 0; k < n_pad; k += kBlockK<D>, s += kBlockVecs<D>) {
        __m256 v[2];
        for (int j = 0; j < kBlockVecs<D>; j++) {
            const int valid = std::clamp(n - k - j * kLanes, 0, kLanes);
            v[j] =
                valid == kLanes ? load8<DType::F32>(x + k + j * kLanes) : load8<DType::F32>(x + k + j * kLanes, valid);
        }
        if constexpr (D == DType::BF16) {
            // [x0 x2 x8 x10 | x4 x6 x12 x14] → [x0 x2 x4 x6 x8 x10 x12 x14], and the same for the odd ones.
            const __m256 e = _mm256_shuffle_ps(v[0], v[1], _MM_SHUFFLE(2, 0, 2, 0));
            const __m256 o = _mm256_shuffle_ps(v[0], v[1], _MM_SHUFFLE(3, 1, 3, 1));
            _mm256_storeu_ps(out + s * step_stride,
                             _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0))));
            _mm256_storeu_ps(out + (s + 1) * step_stride,
                             _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0))));
        } else {
            _mm256_storeu_ps(out + s * step_stride, v[0]);
        }
    }
}

// Sum of the 8 lanes in a fixed tree: (l, l+4), then (l, l+2), (l, l+1).
RWKV_AVX2_INLINE float hsum(__m256 v) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

// ---- decode: tiles on the weights in place

// One block of k (from k) of a tile: prefetch, the TT tokens' x block, then per row (at stride ws) one weight block
// and its FMAs into acc[r][t]. Full: the whole block is inside the row (else zero-padded copies of the first n - k).
template <DType D, int R, int TT, bool Full>
RWKV_AVX2_INLINE void tile_block(__m256 (&acc)[R][TT], const Elem<D>* w, int64_t ws, int n, const float* xq, int n_pad,
                                 int k, bool prefetch) {
    constexpr int B = kBlockVecs<D>;
    // The line kPrefetchBytes ahead in each row stream (past the end: a harmless no-op), once per 64 bytes (a block
    // is 32 bytes of weights).
    if (prefetch && (k / kBlockK<D>) % 2 == 0) {
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(w + r * ws + k) + kPrefetchBytes),
                         _MM_HINT_T1);
    }
    __m256 xv[TT][B];
#pragma GCC unroll 8
    for (int t = 0; t < TT; t++)
#pragma GCC unroll 2
        for (int j = 0; j < B; j++) xv[t][j] = _mm256_loadu_ps(xq + int64_t(t) * n_pad + k + j * kLanes);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        __m256 wv[B];
        load_block<D, Full>(w + r * ws + k, n - k, wv);
#pragma GCC unroll 2
        for (int j = 0; j < B; j++)
#pragma GCC unroll 8
            for (int t = 0; t < TT; t++) acc[r][t] = _mm256_fmadd_ps(wv[j], xv[t][j], acc[r][t]);
    }
}

// y[t * n_out + r * rs] (=|+=) Σ_k w[r * rs * n + k] · x[t, k] for r < R, t < TT: R rows at a stride of rs rows,
// with xq the tokens' x in block order (rows of n_pad floats). `prefetch`: the rows are read for the first time.
template <DType D, int R, int TT>
RWKV_AVX2 void dot_tile(const Elem<D>* w, int n, const float* xq, int n_pad, float* y, int64_t n_out, bool accumulate,
                        int64_t rs, bool prefetch) {
    const int64_t ws = rs * n;
    __m256 acc[R][TT];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++) acc[r][t] = _mm256_setzero_ps();
    int k = 0;
    for (; k + kBlockK<D> <= n; k += kBlockK<D>) tile_block<D, R, TT, true>(acc, w, ws, n, xq, n_pad, k, prefetch);
    if (k < n) tile_block<D, R, TT, false>(acc, w, ws, n, xq, n_pad, k, prefetch);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++) {
            const float s = hsum(acc[r][t]);
            float& out = y[t * n_out + r * rs];
            out = accumulate ? out + s : s;
        }
}

// Rows o, o + rs, ..., o + (R - 1) rs for all T tokens, kDirectTokens tokens at a time (the rows come from memory
// once, then from L1).
template <DType D, int R>
RWKV_AVX2 void direct_rows(const MatmulArgs& a, const float* xq, int n_pad, int64_t o, int64_t rs) {
    const int n = a.w->n_in;
    const int64_t n_out = a.w->n_out;
    const Elem<D>* w = static_cast<const Elem<D>*>(a.w->data) + o * n;
    static_assert(kDirectTokens == 2, "the branch below covers 1..kDirectTokens tokens");
    for (int t0 = 0; t0 < a.T; t0 += kDirectTokens) {
        const float* x = xq + int64_t(t0) * n_pad;
        float* y = a.y + int64_t(t0) * n_out + o;
        if (a.T - t0 >= 2)
            dot_tile<D, R, 2>(w, n, x, n_pad, y, n_out, a.accumulate, rs, t0 == 0);
        else
            dot_tile<D, R, 1>(w, n, x, n_pad, y, n_out, a.accumulate, rs, t0 == 0);
    }
}

// Rows [o0, o1) as R sections of S consecutive rows read side by side (rows o0 + i, o0 + i + S, ...): R long
// sequential streams for the hardware prefetcher (R adjacent short rows would be R short streams, each starting
// cold), then the leftover rows one at a time.
template <DType D, int R>
RWKV_AVX2 void out_in_direct(const MatmulArgs& a, const float* xq, int n_pad, int64_t o0, int64_t o1) {
    const int64_t S = (o1 - o0) / R;
    for (int64_t i = 0; i < S; i++) direct_rows<D, R>(a, xq, n_pad, o0 + i, S);
    for (int64_t o = o0 + R * S; o < o1; o++) direct_rows<D, 1>(a, xq, n_pad, o, 1);
}

// ---- prefill: GEMM on packed fp32 operands
//
// Packed layouts, in steps of 8 k in block order (step s of a row = floats [8 s, 8 s + 8) of its block-order form):
//   W group (kGemmRows rows of a panel):    [step][kGemmRows][8]
//   X tile (tokens t0 .. t0 + tt):          [step][tt][8]
// The zero padding to whole blocks adds exact zeros where the decode tiles read zero-padded blocks.

// Packs rows [0, rows) of w (rows ≤ kGemmRows, the others zero) as one W group of `steps` steps.
template <DType D>
RWKV_AVX2 void pack_w(const Elem<D>* w, int n, int rows, int steps, float* out) {
    constexpr int B = kBlockVecs<D>;
    for (int s = 0; s < steps; s += B) {
        const int k = s / B * kBlockK<D>;
        for (int r = 0; r < kGemmRows; r++) {
            __m256 v[B];
            if (r < rows && k + kBlockK<D> <= n) {
                load_block<D, true>(w + int64_t(r) * n + k, n - k, v);
            } else if (r < rows) {
                load_block<D, false>(w + int64_t(r) * n + k, n - k, v);
            } else {
                for (int j = 0; j < B; j++) v[j] = _mm256_setzero_ps();
            }
            for (int j = 0; j < B; j++) _mm256_storeu_ps(out + ((s + j) * kGemmRows + r) * kLanes, v[j]);
        }
    }
}

// Packs tt tokens of x (rows of n floats) as one X tile of n_pad / 8 steps.
template <DType D>
RWKV_AVX2 void pack_x(const float* x, int n, int n_pad, int tt, float* out) {
    for (int t = 0; t < tt; t++) x_in_block_order<D>(x + int64_t(t) * n, n, n_pad, out + t * kLanes, tt * kLanes);
}

// kGemmRows × TT accumulators over `steps` packed steps of one W group and one X tile. They start at zero, or from
// `carry` when `resume` (the previous block of k), and go back to `carry` unless `finish`; when finishing they are
// summed (hsum) into y[t * ys + r] (=|+=) for r < rows (≤ kGemmRows).
template <int TT>
RWKV_AVX2 void packed_tile(const float* w, const float* x, int steps, __m256* carry, bool resume, bool finish, float* y,
                           int64_t ys, int rows, bool accumulate) {
    constexpr int R = kGemmRows;
    __m256 acc[R][TT];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++) acc[r][t] = resume ? carry[r * TT + t] : _mm256_setzero_ps();
    for (int s = 0; s < steps; s++, w += R * kLanes, x += TT * kLanes) {
        __m256 xv[TT];
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++) xv[t] = _mm256_loadu_ps(x + t * kLanes);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m256 wv = _mm256_loadu_ps(w + r * kLanes);
#pragma GCC unroll 8
            for (int t = 0; t < TT; t++) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    if (!finish) {
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
#pragma GCC unroll 8
            for (int t = 0; t < TT; t++) carry[r * TT + t] = acc[r][t];
        return;
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        if (r >= rows) break;
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++) {
            const float s = hsum(acc[r][t]);
            float& out = y[t * ys + r];
            out = accumulate ? out + s : s;
        }
    }
}

// One X tile of tt tokens against the `groups` packed W groups of a panel (rows [0, rows) of the panel), k in
// blocks of kKBlockSteps steps so that the X tile's block stays in L1 while the groups stream past it.
RWKV_AVX2 void panel_tile(int tt, const float* wp, int64_t group_floats, int groups, int rows, const float* x,
                          int steps, __m256* carry, float* y, int64_t ys, bool accumulate) {
    static_assert(kGemmTokens == 3, "the switch below covers 1..kGemmTokens tokens");
    for (int s0 = 0; s0 < steps; s0 += kKBlockSteps) {
        const int ns = std::min(kKBlockSteps, steps - s0);
        const bool resume = s0 > 0, finish = s0 + ns == steps;
        const float* xs = x + int64_t(s0) * tt * kLanes;
        for (int g = 0; g < groups; g++) {
            const float* w = wp + g * group_floats + int64_t(s0) * kGemmRows * kLanes;
            __m256* c = carry + g * kGemmRows * kGemmTokens;
            float* yg = y + g * kGemmRows;
            const int rg = std::min(kGemmRows, rows - g * kGemmRows);
            switch (tt) {
                case 3:
                    packed_tile<3>(w, xs, ns, c, resume, finish, yg, ys, rg, accumulate);
                    break;
                case 2:
                    packed_tile<2>(w, xs, ns, c, resume, finish, yg, ys, rg, accumulate);
                    break;
                case 1:
                    packed_tile<1>(w, xs, ns, c, resume, finish, yg, ys, rg, accumulate);
                    break;
            }
        }
    }
}

// How the prefill GEMM blocks one call.
struct GemmPlan {
    int steps;       // n_pad / 8
    int tiles;       // ceil(T / kGemmTokens)
    int panel_rows;  // rows packed at once per thread: a multiple of kGemmRows, ≤ kPanelBytes packed
    int64_t x_tile_floats() const { return int64_t(steps) * kGemmTokens * kLanes; }
    int64_t w_group_floats() const { return int64_t(steps) * kGemmRows * kLanes; }
};

// Rows [o0, o1) for all T tokens from the packed X tiles `xp`; `wp` holds one packed panel, `carry` the
// accumulators of its groups between blocks of k.
template <DType D>
RWKV_AVX2 void out_in_gemm(const MatmulArgs& a, const GemmPlan& plan, int64_t o0, int64_t o1, const float* xp,
                           float* wp, __m256* carry) {
    const int n = a.w->n_in;
    const int64_t n_out = a.w->n_out;
    const Elem<D>* w = static_cast<const Elem<D>*>(a.w->data);
    for (int64_t p0 = o0; p0 < o1; p0 += plan.panel_rows) {
        const int rows = int(std::min<int64_t>(plan.panel_rows, o1 - p0));
        const int groups = (rows + kGemmRows - 1) / kGemmRows;
        for (int g = 0; g < groups; g++)
            pack_w<D>(w + (p0 + g * kGemmRows) * n, n, std::min(kGemmRows, rows - g * kGemmRows), plan.steps,
                      wp + g * plan.w_group_floats());
        for (int j = 0; j < plan.tiles; j++) {
            const int t0 = j * kGemmTokens;
            panel_tile(std::min(kGemmTokens, a.T - t0), wp, plan.w_group_floats(), groups, rows,
                       xp + j * plan.x_tile_floats(), plan.steps, carry, a.y + int64_t(t0) * n_out + p0, n_out,
                       a.accumulate);
        }
    }
}

// ---- InOut

// y[t, o] (=|+=) Σ_k x[t, k] · w[k, o] for V vectors of 8 columns from `o` (the last one holding `last` ≤ 8
// columns) and TT tokens; one FMA chain per element, k increasing.
// The weights come from `w` (column o of row k at w[k · w_stride]): the matrix in place (D, stride n_out), or a
// slab packed as fp32 (D = F32, stride kInOutCols; in_out_pack): the same values, so the same bits.
template <DType D, int V, int TT>
RWKV_AVX2 void in_out_tile(const MatmulArgs& a, const Elem<D>* w, int64_t w_stride, int64_t o, int t0, int last) {
    const int n_in = a.w->n_in;
    const int64_t n_out = a.w->n_out;
    const float* x = a.x + int64_t(t0) * n_in;
    __m256 acc[V][TT];
#pragma GCC unroll 8
    for (int v = 0; v < V; v++)
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++) acc[v][t] = _mm256_setzero_ps();
    for (int k = 0; k < n_in; k++) {
        const Elem<D>* wk = w + int64_t(k) * w_stride;
        __m256 wv[V];
#pragma GCC unroll 8
        for (int v = 0; v < V - 1; v++) wv[v] = load8<D>(wk + v * kLanes);
        wv[V - 1] = last == kLanes ? load8<D>(wk + (V - 1) * kLanes) : load8<D>(wk + (V - 1) * kLanes, last);
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++) {
            __m256 xb = _mm256_set1_ps(x[int64_t(t) * n_in + k]);
#pragma GCC unroll 8
            for (int v = 0; v < V; v++) acc[v][t] = _mm256_fmadd_ps(wv[v], xb, acc[v][t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < TT; t++) {
        float* y = a.y + int64_t(t0 + t) * n_out + o;
#pragma GCC unroll 8
        for (int v = 0; v < V; v++) {
            const int cols = v == V - 1 ? last : kLanes;
            if (cols == kLanes) {
                __m256 s = acc[v][t];
                if (a.accumulate) s = _mm256_add_ps(_mm256_loadu_ps(y + v * kLanes), s);
                _mm256_storeu_ps(y + v * kLanes, s);
            } else {
                alignas(32) float s[kLanes];
                _mm256_store_ps(s, acc[v][t]);
                for (int c = 0; c < cols; c++) {
                    float& out = y[v * kLanes + c];
                    out = a.accumulate ? out + s[c] : s[c];
                }
            }
        }
    }
}

template <DType D, int TT>
RWKV_AVX2 void in_out_cols(const MatmulArgs& a, const Elem<D>* w, int64_t w_stride, int64_t o, int t0) {
    const int64_t cols = std::min<int64_t>(kInOutCols, a.w->n_out - o);
    const int v = int((cols + kLanes - 1) / kLanes);
    const int last = int(cols - int64_t(v - 1) * kLanes);
    static_assert(kInOutCols == 4 * kLanes, "the switch below covers 1..4 vectors");
    switch (v) {
        case 4:
            in_out_tile<D, 4, TT>(a, w, w_stride, o, t0, last);
            break;
        case 3:
            in_out_tile<D, 3, TT>(a, w, w_stride, o, t0, last);
            break;
        case 2:
            in_out_tile<D, 2, TT>(a, w, w_stride, o, t0, last);
            break;
        case 1:
            in_out_tile<D, 1, TT>(a, w, w_stride, o, t0, last);
            break;
    }
}

// Columns [o, o + kInOutCols) of every row as fp32, contiguous ([n_in][kInOutCols], zeros past n_out), so that the
// tiles stream the slab instead of 64 bytes from every n_out-strided row (4-5x faster for 0.4B's ffn_value).
template <DType D>
RWKV_AVX2 void in_out_pack(const WeightMatrix& w, int64_t o, float* slab) {
    const int64_t cols = std::min<int64_t>(kInOutCols, w.n_out - o);
    const Elem<D>* src = static_cast<const Elem<D>*>(w.data) + o;
    for (int64_t k = 0; k < w.n_in; k++) {
        const Elem<D>* row = src + k * w.n_out;
        float* dst = slab + k * kInOutCols;
        for (int v = 0; v < kInOutCols / kLanes; v++) {
            const int64_t valid = std::clamp<int64_t>(cols - v * kLanes, 0, kLanes);
            const __m256 x = valid == kLanes ? load8<D>(row + v * kLanes)
                             : valid > 0     ? load8<D>(row + v * kLanes, int(valid))
                                             : _mm256_setzero_ps();
            _mm256_store_ps(dst + v * kLanes, x);
        }
    }
}

// `w`, `w_stride`: the block's weights, in place or packed (in_out_tile).
template <DType D>
RWKV_AVX2 void in_out_item(const MatmulArgs& a, int64_t item, int64_t chunks, const Elem<D>* w, int64_t w_stride) {
    const int64_t o = (item / chunks) * kInOutCols;
    const int t_end = std::min<int>(a.T, int(item % chunks + 1) * kInOutChunk);
    static_assert(kInOutTokens == 2, "the branch below covers 1..2 tokens");
    for (int t0 = int(item % chunks) * kInOutChunk; t0 < t_end; t0 += kInOutTokens) {
        if (t_end - t0 >= 2)
            in_out_cols<D, 2>(a, w, w_stride, o, t0);
        else
            in_out_cols<D, 1>(a, w, w_stride, o, t0);
    }
}

// y[o .. o + 8 V) (=|+=) Σ_k x[k] · w[k, o ..] for one token, over the rows k listed in `ks` (increasing): the
// rows whose x[k] is not zero. One FMA chain per element in increasing k, as in in_out_tile, so leaving out the
// zero rows changes no bit of the result while their bytes are never read: the sparse ReLU² FFN (ffn_value is
// stored InOut, one row per hidden unit). Each pass prefetches the row kRowAhead entries ahead itself.
template <DType D, int V>
RWKV_AVX2 void in_out_rows(const MatmulArgs& a, const int32_t* ks, int n_k, int64_t o, int last) {
    const int64_t n_out = a.w->n_out;
    const Elem<D>* w = static_cast<const Elem<D>*>(a.w->data) + o;
    __m256 acc[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; v++) acc[v] = _mm256_setzero_ps();
    for (int i = 0; i < n_k; i++) {
        if (i + kRowAhead < n_k) {
            const char* ahead = reinterpret_cast<const char*>(w + int64_t(ks[i + kRowAhead]) * n_out);
#pragma GCC unroll 8
            for (int line = 0; line < V * kLanes * int(sizeof(Elem<D>)); line += 64)
                _mm_prefetch(ahead + line, _MM_HINT_T0);
        }
        const int k = ks[i];
        const Elem<D>* wk = w + int64_t(k) * n_out;
        const __m256 xb = _mm256_set1_ps(a.x[k]);
#pragma GCC unroll 8
        for (int v = 0; v < V - 1; v++) acc[v] = _mm256_fmadd_ps(load8<D>(wk + v * kLanes), xb, acc[v]);
        const __m256 wl = last == kLanes ? load8<D>(wk + (V - 1) * kLanes) : load8<D>(wk + (V - 1) * kLanes, last);
        acc[V - 1] = _mm256_fmadd_ps(wl, xb, acc[V - 1]);
    }
    float* y = a.y + o;
#pragma GCC unroll 8
    for (int v = 0; v < V; v++) {
        const int cols = v == V - 1 ? last : kLanes;
        alignas(32) float r[kLanes];
        _mm256_store_ps(r, acc[v]);
        for (int c = 0; c < cols; c++) y[v * kLanes + c] = a.accumulate ? y[v * kLanes + c] + r[c] : r[c];
    }
}

// Columns [o, o + kRowCols) of the one-token InOut product over the listed rows.
template <DType D>
RWKV_AVX2 void in_out_row_cols(const MatmulArgs& a, const int32_t* ks, int n_k, int64_t o) {
    const int64_t cols = std::min<int64_t>(kRowCols, a.w->n_out - o);
    const int v = int((cols + kLanes - 1) / kLanes);
    const int last = int(cols - int64_t(v - 1) * kLanes);
    static_assert(kRowCols == 8 * kLanes, "the switch below covers 1..8 vectors");
    switch (v) {
        case 8:
            return in_out_rows<D, 8>(a, ks, n_k, o, last);
        case 7:
            return in_out_rows<D, 7>(a, ks, n_k, o, last);
        case 6:
            return in_out_rows<D, 6>(a, ks, n_k, o, last);
        case 5:
            return in_out_rows<D, 5>(a, ks, n_k, o, last);
        case 4:
            return in_out_rows<D, 4>(a, ks, n_k, o, last);
        case 3:
            return in_out_rows<D, 3>(a, ks, n_k, o, last);
        case 2:
            return in_out_rows<D, 2>(a, ks, n_k, o, last);
        case 1:
            return in_out_rows<D, 1>(a, ks, n_k, o, last);
    }
}

// ---- the entry point for one dtype

// Prefill for tokens [0, a.T) of `a` (a chunk of the call): pack X, then the rows over the threads.
template <DType D>
void gemm(const MatmulArgs& a, int n_pad, ThreadPool& pool) {
    const WeightMatrix& w = *a.w;
    const int64_t work = int64_t(a.T) * w.n_out * w.n_in;
    GemmPlan plan;
    plan.steps = n_pad / kLanes;
    plan.tiles = (a.T + kGemmTokens - 1) / kGemmTokens;
    const int64_t fit = kPanelBytes / (plan.w_group_floats() * int64_t(sizeof(float))) * kGemmRows;
    plan.panel_rows = int(std::clamp<int64_t>(fit, kGemmRows, kMaxPanelRows));
    // X tiles are packed once per call and shared by the threads; each thread packs its own W panels.
    thread_local AlignedBuffer xp_buf;
    float* xp = xp_buf.floats(plan.tiles * plan.x_tile_floats());
    pool.parallel_for(plan.tiles, work < kSmallWork ? plan.tiles : 1, [&](int64_t b, int64_t e) {
        for (int64_t j = b; j < e; j++) {
            const int t0 = int(j) * kGemmTokens;
            pack_x<D>(a.x + int64_t(t0) * w.n_in, w.n_in, n_pad, std::min(kGemmTokens, a.T - t0),
                      xp + j * plan.x_tile_floats());
        }
    });
    pool.parallel_for(w.n_out, work < kSmallWork ? w.n_out : plan.panel_rows, [&](int64_t b, int64_t e) {
        thread_local AlignedBuffer wp_buf, carry_buf;  // grow once per thread, then reused
        float* wp = wp_buf.floats(plan.panel_rows / kGemmRows * plan.w_group_floats());
        __m256* carry = reinterpret_cast<__m256*>(carry_buf.floats(int64_t(plan.panel_rows) * kGemmTokens * kLanes));
        out_in_gemm<D>(a, plan, b, e, xp, wp, carry);
    });
}

template <DType D>
void run(const MatmulArgs& a, ThreadPool& pool) {
    const WeightMatrix& w = *a.w;
    const int64_t work = int64_t(a.T) * w.n_out * w.n_in;
    if (w.layout == WeightMatrix::Layout::InOut && a.T == 1) {
        // The rows with a non-zero x, listed once by the caller's thread and shared by the threads.
        thread_local std::vector<int32_t> ks;
        ks.clear();
        for (int k = 0; k < w.n_in; k++)
            if (a.x[k] != 0.0f) ks.push_back(k);
        const int32_t* listed = ks.data();  // a thread_local is not captured: each thread would see its own
        const int n_listed = int(ks.size());
        const int64_t col_blocks = (w.n_out + kRowCols - 1) / kRowCols;
        const int64_t listed_work = int64_t(n_listed) * w.n_out;
        pool.parallel_for(col_blocks, listed_work < kSmallWork ? col_blocks : 1, [&](int64_t b, int64_t e) {
            for (int64_t j = b; j < e; j++) in_out_row_cols<D>(a, listed, n_listed, j * kRowCols);
        });
        return;
    }
    if (w.layout == WeightMatrix::Layout::InOut) {
        const int64_t chunks = (a.T + kInOutChunk - 1) / kInOutChunk;
        const int64_t items = (w.n_out + kInOutCols - 1) / kInOutCols * chunks;
        // Above one token tile, each thread packs a column block once for all of its items of that block.
        in_out_items(
            pool, items, chunks, work < kSmallWork ? items : 1, a.T > kInOutTokens, int64_t(w.n_in) * kInOutCols,
            [&](int64_t item, int64_t block) {
                in_out_item<D>(a, item, chunks, static_cast<const Elem<D>*>(w.data) + block * kInOutCols, w.n_out);
            },
            [&](int64_t block, float* slab) { in_out_pack<D>(w, block * kInOutCols, slab); },
            [&](int64_t item, const float* slab) { in_out_item<DType::F32>(a, item, chunks, slab, kInOutCols); });
        return;
    }
    const int n_pad = (w.n_in + kBlockK<D> - 1) / kBlockK<D> * kBlockK<D>;
    if (a.T <= kMaxDirectT) {
        // x in block order, once per call by the caller's thread (T · n_in floats), shared by the threads.
        thread_local AlignedBuffer xq_buf;
        float* xq = xq_buf.floats(int64_t(a.T) * n_pad);
        for (int t = 0; t < a.T; t++)
            x_in_block_order<D>(a.x + int64_t(t) * w.n_in, w.n_in, n_pad, xq + int64_t(t) * n_pad, kLanes);
        pool.parallel_for(w.n_out, work < kSmallWork ? w.n_out : 8, [&](int64_t b, int64_t e) {
            if (a.T == 1)
                out_in_direct<D, 8>(a, xq, n_pad, b, e);
            else
                out_in_direct<D, 4>(a, xq, n_pad, b, e);
        });
        return;
    }
    // Tokens in chunks whose packed X (≤ kXChunkBytes) stays in L2/L3 while every panel of rows passes over it;
    // each chunk converts and packs the weights again (once per ≥ 32 tokens for the longest rows).
    const int64_t token_bytes = int64_t(n_pad) * int64_t(sizeof(float));
    const int chunk =
        int(std::max<int64_t>(kXChunkBytes / token_bytes / kGemmTokens, 32 / kGemmTokens + 1) * kGemmTokens);
    for (int t0 = 0; t0 < a.T; t0 += chunk) {
        MatmulArgs part = a;
        part.x = a.x + int64_t(t0) * w.n_in;
        part.y = a.y + int64_t(t0) * w.n_out;
        part.T = std::min(chunk, a.T - t0);
        gemm<D>(part, n_pad, pool);
    }
}

}  // namespace

void matmul_fast_avx2(const MatmulArgs& args, ThreadPool& pool) {
    if (args.T <= 0 || args.w->n_out <= 0) return;
    if (args.w->n_in == 0) {  // empty sums
        if (!args.accumulate) std::fill_n(args.y, int64_t(args.T) * args.w->n_out, 0.0f);
        return;
    }
    switch (args.w->dtype) {
        case DType::F32:
            run<DType::F32>(args, pool);
            break;
        case DType::F16:
            run<DType::F16>(args, pool);
            break;
        case DType::BF16:
            run<DType::BF16>(args, pool);
            break;
    }
}

}  // namespace rwkv::detail

#else  // not x86-64 with GCC/Clang: never selected (cpu_isa_supported() is false); kept for the linker.

namespace rwkv::detail {
void matmul_fast_avx2(const MatmulArgs& args, ThreadPool& pool) {
    matmul_cpu(args, pool);
}
}  // namespace rwkv::detail

#endif
