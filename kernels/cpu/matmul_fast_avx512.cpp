// AVX-512 kernels of the fast CPU matmul, Y[T, n_out] (=|+=) X[T, n_in] · Wᵀ (kernels/cpu/matmul_fast.h). Built
// for any x86-64: every function that uses AVX-512 carries RWKV_AVX512 (a target attribute), and the dispatcher
// only calls in here when cpu_isa_supported(CpuIsa::Avx512). Design and measurements: docs/cpu-kernels.md.
//
// Blocks of k. A row of weights is consumed in blocks of one 64-byte cache line: 16 k for f32, 32 k for f16 (two
// vcvtph2ps) and for bf16, whose 32 values are split by a shift and a mask into the even-k and the odd-k weights as
// fp32 (two integer ops for 32 weights instead of four). X is first copied into the same block order ("xq": the x
// values in order, or for bf16 per block the 16 even then the 16 odd ones), zero-padded to whole blocks, once per
// call. Every output element is therefore summed the same way in every path: lane l of one 16-lane accumulator
// takes the products of its block positions in block order with FMA (for f32/f16: k ≡ l mod 16 in increasing k),
// then hsum() adds the lanes in a fixed tree. Decode and prefill, and any number of threads, give
// bitwise-identical results.
//
// OutIn (W[o, k] at o * n_in + k), every big matrix:
//   - decode, T ≤ kMaxDirectT: dot_tile<D, R, TT> reads R rows of the weights in place (8 rows for T = 1, else 4)
//     and dots them with TT ≤ 4 tokens, the tokens in chunks so that each weight comes from memory once. A thread
//     cuts its rows into R sections and reads row i of every section side by side: R long sequential streams
//     (R adjacent rows would be R short streams, 24 cache lines each for 768 bf16, that the hardware prefetcher
//     never catches up with), each prefetched kPrefetchBytes ahead into L2 (worth ~20% of bandwidth here). Bytes
//     moved: n_out · n_in · sizeof(dtype); memory-bound.
//   - prefill, T > kMaxDirectT: the rows of a panel (≤ kPanelBytes) are converted to fp32 and packed as groups of
//     4 rows interleaved per 16-k step, X as tiles of 6 tokens interleaved the same way; packed_tile then runs
//     4 rows × 6 tokens = 24 accumulators with 10 vector loads per 24 FMAs from two contiguous streams (no L1
//     aliasing at power-of-two n_in). Compute-bound: 2 · T · n_out · n_in flops.
//   - threads take contiguous ranges of rows (multiples of the tile / panel).
//
// InOut (W[o, k] at k * n_out + o), the LoRA matrices and the transposed FFN value matrix: tiles of 64 columns ×
// 6 tokens (24 accumulators), axpy over k (broadcast x[t, k], FMA with the row of weights; the last vector of a
// row masked). Each element is one FMA chain over k in increasing order. Work items (column block × a chunk of 96
// tokens, column-block-major) are spread over the threads; above one token tile each thread first packs its block
// as contiguous fp32 (in_out_pack: a strided read of the matrix once, then L2 streams). One token (decode): each
// thread takes ~n_out / threads columns and reads its part of only the rows whose x[k] is not zero, one pass
// (in_out_rows, the sparse ReLU² FFN): the same FMA chains without the exact-zero terms, so bitwise the same result.

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

// GCC 12 warns "'__Y' may be used uninitialized" inside many AVX-512 intrinsics (their _mm512_undefined_*()
// pass-through, GCC bug 105593, fixed in GCC 13); the diagnostic is located in the header, so silence it there.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif

#define RWKV_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define RWKV_AVX512_INLINE RWKV_AVX512 inline __attribute__((always_inline))

namespace rwkv::detail {
namespace {

constexpr int kLanes = 16;
constexpr int kMaxDirectT = 64;                 // decode tiles (weights in place) up to this many tokens ...
constexpr int kDirectTokens = 4;                // ... taken this many at a time
constexpr int kGemmRows = 4;                    // prefill tile: rows ...
constexpr int kGemmTokens = 6;                  // ... × tokens
constexpr int64_t kPanelBytes = 256 << 10;      // prefill: packed fp32 panel per thread, at most (stays in L2) ...
constexpr int kMaxPanelRows = 32;               // ... and at most this many rows
constexpr int64_t kXChunkBytes = 4 << 20;       // prefill: tokens per pass, at most this much packed X
constexpr int kInOutCols = 64;                  // InOut tile: columns (4 vectors) ...
constexpr int kInOutTokens = 6;                 // ... × tokens
constexpr int kInOutChunk = 16 * kInOutTokens;  // InOut work item: one column block × this many tokens
constexpr int kRowCols = 1024;                  // InOut, one token: columns per pass over the rows, at most
constexpr int kRowAhead = 8;                    // ... prefetching the row this many listed rows ahead
constexpr int64_t kSmallWork = 1 << 16;         // multiply-adds below which one thread does the whole call

template <DType D>
using Elem = std::conditional_t<D == DType::F32, float, uint16_t>;

// Vectors of 16 weights per block of k, and k per block: one 64-byte cache line of weights.
template <DType D>
constexpr int kBlockVecs = D == DType::F32 ? 1 : 2;
template <DType D>
constexpr int kBlockK = D == DType::F32 ? kLanes : 2 * kLanes;
constexpr int kPrefetchBytes = 2048;  // decode: prefetch distance ahead of each row stream, into L2

// The weights of one block as fp32 (exact conversions). Full: all kBlockK<D> elements; otherwise the first `valid`
// (the others are zero and not read).
template <DType D, bool Full>
RWKV_AVX512_INLINE void load_block(const Elem<D>* p, int valid, __m512* out) {
    if constexpr (D == DType::F32) {
        out[0] = Full ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(__mmask16((1u << valid) - 1), p);
    } else if constexpr (D == DType::F16) {
        for (int j = 0; j < 2; j++) {
            const int vj = std::clamp(valid - j * kLanes, 0, kLanes);
            const __m256i h = Full ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + j * kLanes))
                                   : _mm256_maskz_loadu_epi16(__mmask16((1u << vj) - 1), p + j * kLanes);
            out[j] = _mm512_cvtph_ps(h);
        }
    } else {
        // 32 bf16 as 16 dwords: the low half of dword l is k = 2l, the high half k = 2l + 1. bf16 is the top half
        // of an fp32, so (dword << 16) is w[2l] and (dword & 0xffff0000) is w[2l + 1].
        const __m512i v = Full ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi16(__mmask32((1ull << valid) - 1), p);
        out[0] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
        out[1] = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(int(0xffff0000u))));
    }
}

// x (n floats) in block order for dtype D, zero-padded to n_pad (a multiple of kBlockK<D>): the 16 floats of step s
// go to out + s * step_stride (16 for a plain row, 16 · tt inside a packed X tile).
template <DType D>
RWKV_AVX512 void x_in_block_order(const float* x, int n, int n_pad, float* out, int64_t step_stride) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int k = 0, s = 0; k < n_pad; k += kBlockK<D>, s += kBlockVecs<D>) {
        __m512 v[2];
        for (int j = 0; j < kBlockVecs<D>; j++) {
            const int valid = std::clamp(n - k - j * kLanes, 0, kLanes);
            v[j] = _mm512_maskz_loadu_ps(__mmask16((1u << valid) - 1), x + k + j * kLanes);
        }
        if constexpr (D == DType::BF16) {
            _mm512_storeu_ps(out + s * step_stride, _mm512_permutex2var_ps(v[0], even, v[1]));
            _mm512_storeu_ps(out + (s + 1) * step_stride, _mm512_permutex2var_ps(v[0], odd, v[1]));
        } else {
            for (int j = 0; j < kBlockVecs<D>; j++) _mm512_storeu_ps(out + (s + j) * step_stride, v[j]);
        }
    }
}

// Sum of the 16 lanes in a fixed tree: (l, l+8), then (l, l+4), (l, l+2), (l, l+1).
RWKV_AVX512_INLINE float hsum(__m512 v) {
    const __m256 h = _mm256_add_ps(_mm512_extractf32x8_ps(v, 0), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

// ---- decode: tiles on the weights in place

// One block of k (from k) of a tile: prefetch, the TT tokens' x block, then per row (at stride ws) one weight block
// and its FMAs into acc[r][t]. Full: the whole block is inside the row (else masked loads of the first n - k).
template <DType D, int R, int TT, bool Full>
RWKV_AVX512_INLINE void tile_block(__m512 (&acc)[R][TT], const Elem<D>* w, int64_t ws, int n, const float* xq,
                                   int n_pad, int k, bool prefetch) {
    constexpr int B = kBlockVecs<D>;
    if (prefetch) {  // the line kPrefetchBytes ahead in each row stream (past the end: a harmless no-op)
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(w + r * ws + k) + kPrefetchBytes),
                         _MM_HINT_T1);
    }
    __m512 xv[TT][B];
#pragma GCC unroll 8
    for (int t = 0; t < TT; t++)
#pragma GCC unroll 2
        for (int j = 0; j < B; j++) xv[t][j] = _mm512_loadu_ps(xq + int64_t(t) * n_pad + k + j * kLanes);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        __m512 wv[B];
        load_block<D, Full>(w + r * ws + k, n - k, wv);
#pragma GCC unroll 2
        for (int j = 0; j < B; j++)
#pragma GCC unroll 8
            for (int t = 0; t < TT; t++) acc[r][t] = _mm512_fmadd_ps(wv[j], xv[t][j], acc[r][t]);
    }
}

// y[t * n_out + r * rs] (=|+=) Σ_k w[r * rs * n + k] · x[t, k] for r < R, t < TT: R rows at a stride of rs rows,
// with xq the tokens' x in block order (rows of n_pad floats). `prefetch`: the rows are read for the first time.
template <DType D, int R, int TT>
RWKV_AVX512 void dot_tile(const Elem<D>* w, int n, const float* xq, int n_pad, float* y, int64_t n_out, bool accumulate,
                          int64_t rs, bool prefetch) {
    const int64_t ws = rs * n;
    __m512 acc[R][TT];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++) acc[r][t] = _mm512_setzero_ps();
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
RWKV_AVX512 void direct_rows(const MatmulArgs& a, const float* xq, int n_pad, int64_t o, int64_t rs) {
    const int n = a.w->n_in;
    const int64_t n_out = a.w->n_out;
    const Elem<D>* w = static_cast<const Elem<D>*>(a.w->data) + o * n;
    for (int t0 = 0; t0 < a.T; t0 += kDirectTokens) {
        const float* x = xq + int64_t(t0) * n_pad;
        float* y = a.y + int64_t(t0) * n_out + o;
        static_assert(kDirectTokens == 4, "the switch below covers 1..kDirectTokens tokens");
        switch (std::min(kDirectTokens, a.T - t0)) {
            case 4:
                dot_tile<D, R, 4>(w, n, x, n_pad, y, n_out, a.accumulate, rs, t0 == 0);
                break;
            case 3:
                dot_tile<D, R, 3>(w, n, x, n_pad, y, n_out, a.accumulate, rs, t0 == 0);
                break;
            case 2:
                dot_tile<D, R, 2>(w, n, x, n_pad, y, n_out, a.accumulate, rs, t0 == 0);
                break;
            case 1:
                dot_tile<D, R, 1>(w, n, x, n_pad, y, n_out, a.accumulate, rs, t0 == 0);
                break;
        }
    }
}

// Rows [o0, o1) as R sections of S consecutive rows read side by side (rows o0 + i, o0 + i + S, ...): R long
// sequential streams for the hardware prefetcher (R adjacent short rows would be R short streams, each starting
// cold), then the leftover rows one at a time.
template <DType D, int R>
RWKV_AVX512 void out_in_direct(const MatmulArgs& a, const float* xq, int n_pad, int64_t o0, int64_t o1) {
    const int64_t S = (o1 - o0) / R;
    for (int64_t i = 0; i < S; i++) direct_rows<D, R>(a, xq, n_pad, o0 + i, S);
    for (int64_t o = o0 + R * S; o < o1; o++) direct_rows<D, 1>(a, xq, n_pad, o, 1);
}

// ---- prefill: GEMM on packed fp32 operands
//
// Packed layouts, in steps of 16 k in block order (step s of a row = floats [16 s, 16 s + 16) of its xq form):
//   W group (kGemmRows rows of a panel):    [step][kGemmRows][16]
//   X tile (tokens t0 .. t0 + tt):          [step][tt][16]
// The zero padding to whole blocks adds exact zeros where the decode tiles read masked blocks: same arithmetic.

// Packs rows [0, rows) of w (rows ≤ kGemmRows, the others zero) as one W group of `steps` steps.
template <DType D>
RWKV_AVX512 void pack_w(const Elem<D>* w, int n, int rows, int steps, float* out) {
    constexpr int B = kBlockVecs<D>;
    for (int s = 0; s < steps; s += B) {
        const int k = s / B * kBlockK<D>;
        for (int r = 0; r < kGemmRows; r++) {
            __m512 v[B];
            if (r < rows && k + kBlockK<D> <= n) {
                load_block<D, true>(w + int64_t(r) * n + k, n - k, v);
            } else if (r < rows) {
                load_block<D, false>(w + int64_t(r) * n + k, n - k, v);
            } else {
                for (int j = 0; j < B; j++) v[j] = _mm512_setzero_ps();
            }
            for (int j = 0; j < B; j++) _mm512_storeu_ps(out + ((s + j) * kGemmRows + r) * kLanes, v[j]);
        }
    }
}

// Packs tt tokens of x (rows of n floats) as one X tile of n_pad / 16 steps.
template <DType D>
RWKV_AVX512 void pack_x(const float* x, int n, int n_pad, int tt, float* out) {
    for (int t = 0; t < tt; t++) x_in_block_order<D>(x + int64_t(t) * n, n, n_pad, out + t * kLanes, tt * kLanes);
}

// y[t * ys + r] (=|+=) Σ_k w[r, k] · x[t, k] for r < rows (≤ kGemmRows) and t < TT, from one packed W group and
// one packed X tile: kGemmRows × TT accumulators over `steps` steps, then hsum.
template <int TT>
RWKV_AVX512 void packed_tile(const float* w, const float* x, int steps, float* y, int64_t ys, int rows,
                             bool accumulate) {
    constexpr int R = kGemmRows;
    __m512 acc[R][TT];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++) acc[r][t] = _mm512_setzero_ps();
    for (int s = 0; s < steps; s++, w += R * kLanes, x += TT * kLanes) {
        __m512 xv[TT];
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++) xv[t] = _mm512_loadu_ps(x + t * kLanes);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m512 wv = _mm512_loadu_ps(w + r * kLanes);
#pragma GCC unroll 8
            for (int t = 0; t < TT; t++) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
        }
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

// One X tile of tt tokens against the `groups` packed W groups of a panel (rows [0, rows) of the panel).
RWKV_AVX512 void panel_tile(int tt, const float* wp, int64_t group_floats, int groups, int rows, const float* x,
                            int steps, float* y, int64_t ys, bool accumulate) {
    static_assert(kGemmTokens == 6, "the switch below covers 1..kGemmTokens tokens");
    for (int g = 0; g < groups; g++) {
        const float* w = wp + g * group_floats;
        float* yg = y + g * kGemmRows;
        const int rg = std::min(kGemmRows, rows - g * kGemmRows);
        switch (tt) {
            case 6:
                packed_tile<6>(w, x, steps, yg, ys, rg, accumulate);
                break;
            case 5:
                packed_tile<5>(w, x, steps, yg, ys, rg, accumulate);
                break;
            case 4:
                packed_tile<4>(w, x, steps, yg, ys, rg, accumulate);
                break;
            case 3:
                packed_tile<3>(w, x, steps, yg, ys, rg, accumulate);
                break;
            case 2:
                packed_tile<2>(w, x, steps, yg, ys, rg, accumulate);
                break;
            case 1:
                packed_tile<1>(w, x, steps, yg, ys, rg, accumulate);
                break;
        }
    }
}

// How the prefill GEMM blocks one call.
struct GemmPlan {
    int steps;       // n_pad / 16
    int tiles;       // ceil(T / kGemmTokens)
    int panel_rows;  // rows packed at once per thread: a multiple of kGemmRows, ≤ kPanelBytes packed
    int64_t x_tile_floats() const { return int64_t(steps) * kGemmTokens * kLanes; }
    int64_t w_group_floats() const { return int64_t(steps) * kGemmRows * kLanes; }
};

// Rows [o0, o1) for all T tokens from the packed X tiles `xp`; `wp` holds one packed panel.
template <DType D>
RWKV_AVX512 void out_in_gemm(const MatmulArgs& a, const GemmPlan& plan, int64_t o0, int64_t o1, const float* xp,
                             float* wp) {
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
                       xp + j * plan.x_tile_floats(), plan.steps, a.y + int64_t(t0) * n_out + p0, n_out, a.accumulate);
        }
    }
}

// ---- InOut

// 16 consecutive weights of one row as fp32 (lanes outside `mask` zero, not read).
template <DType D>
RWKV_AVX512_INLINE __m512 load_cols(const Elem<D>* p, __mmask16 mask) {
    if constexpr (D == DType::F32) {
        return _mm512_maskz_loadu_ps(mask, p);
    } else {
        const __m256i h = _mm256_maskz_loadu_epi16(mask, p);
        return D == DType::F16 ? _mm512_cvtph_ps(h)
                               : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
}

// y[t, o] (=|+=) Σ_k x[t, k] · w[k, o] for V vectors of 16 columns from `o` (the last one masked by `last`) and
// TT tokens; one FMA chain per element, k increasing.
// The weights come from `w` (column o of row k at w[k · w_stride]): the matrix in place (D, stride n_out), or a
// slab packed as fp32 (D = F32, stride kInOutCols; in_out_pack): the same values, so the same bits.
template <DType D, int V, int TT>
RWKV_AVX512 void in_out_tile(const MatmulArgs& a, const Elem<D>* w, int64_t w_stride, int64_t o, int t0,
                             __mmask16 last) {
    const int n_in = a.w->n_in;
    const int64_t n_out = a.w->n_out;
    const float* x = a.x + int64_t(t0) * n_in;
    __m512 acc[V][TT];
#pragma GCC unroll 8
    for (int v = 0; v < V; v++)
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++) acc[v][t] = _mm512_setzero_ps();
    for (int k = 0; k < n_in; k++) {
        const Elem<D>* wk = w + int64_t(k) * w_stride;
        __m512 wv[V];
#pragma GCC unroll 8
        for (int v = 0; v < V; v++) wv[v] = load_cols<D>(wk + v * kLanes, v == V - 1 ? last : __mmask16(0xffff));
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++) {
            const __m512 xb = _mm512_set1_ps(x[int64_t(t) * n_in + k]);
#pragma GCC unroll 8
            for (int v = 0; v < V; v++) acc[v][t] = _mm512_fmadd_ps(wv[v], xb, acc[v][t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < TT; t++) {
        float* y = a.y + int64_t(t0 + t) * n_out + o;
#pragma GCC unroll 8
        for (int v = 0; v < V; v++) {
            const __mmask16 m = v == V - 1 ? last : __mmask16(0xffff);
            __m512 s = acc[v][t];
            if (a.accumulate) s = _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + v * kLanes), s);
            _mm512_mask_storeu_ps(y + v * kLanes, m, s);
        }
    }
}

template <DType D, int TT>
RWKV_AVX512 void in_out_cols(const MatmulArgs& a, const Elem<D>* w, int64_t w_stride, int64_t o, int t0) {
    const int64_t cols = std::min<int64_t>(kInOutCols, a.w->n_out - o);
    const int v = int((cols + kLanes - 1) / kLanes);
    const __mmask16 last = __mmask16((1u << (cols - int64_t(v - 1) * kLanes)) - 1);
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

// Columns [o, o + kInOutCols) of every row as fp32, contiguous ([n_in][kInOutCols], zeros past n_out): the tiles
// then stream the slab instead of taking 128 bytes from every n_out-strided row (a new 4 KiB page every row or
// two, which held the in-place tiles to a third of the packed OutIn GEMM's rate on 0.4B's ffn_value).
template <DType D>
RWKV_AVX512 void in_out_pack(const WeightMatrix& w, int64_t o, float* slab) {
    const int64_t cols = std::min<int64_t>(kInOutCols, w.n_out - o);
    const Elem<D>* src = static_cast<const Elem<D>*>(w.data) + o;
    for (int64_t k = 0; k < w.n_in; k++) {
        const Elem<D>* row = src + k * w.n_out;
        float* dst = slab + k * kInOutCols;
        for (int v = 0; v < kInOutCols / kLanes; v++) {
            const int64_t valid = std::clamp<int64_t>(cols - v * kLanes, 0, kLanes);
            _mm512_store_ps(dst + v * kLanes, load_cols<D>(row + v * kLanes, __mmask16((1u << valid) - 1)));
        }
    }
}

// Work item `item` of the InOut split: column block item / chunks, and the tokens of chunk item % chunks in tiles
// of kInOutTokens. Column-block-major, so that a block's slab of weights (n_in rows × 64 columns) is read from
// memory once and then from L2 by every tile of the chunk.
// `w`, `w_stride`: the block's weights, in place or packed (in_out_tile).
template <DType D>
RWKV_AVX512 void in_out_item(const MatmulArgs& a, int64_t item, int64_t chunks, const Elem<D>* w, int64_t w_stride) {
    const int64_t o = (item / chunks) * kInOutCols;
    const int t_end = std::min<int>(a.T, int(item % chunks + 1) * kInOutChunk);
    static_assert(kInOutTokens == 6, "the switch below covers 1..6 tokens");
    for (int t0 = int(item % chunks) * kInOutChunk; t0 < t_end; t0 += kInOutTokens) {
        switch (std::min(kInOutTokens, t_end - t0)) {
            case 6:
                in_out_cols<D, 6>(a, w, w_stride, o, t0);
                break;
            case 5:
                in_out_cols<D, 5>(a, w, w_stride, o, t0);
                break;
            case 4:
                in_out_cols<D, 4>(a, w, w_stride, o, t0);
                break;
            case 3:
                in_out_cols<D, 3>(a, w, w_stride, o, t0);
                break;
            case 2:
                in_out_cols<D, 2>(a, w, w_stride, o, t0);
                break;
            case 1:
                in_out_cols<D, 1>(a, w, w_stride, o, t0);
                break;
        }
    }
}

// y[o .. o + cols) (=|+=) Σ_k x[k] · w[k, o ..] for one token, over the rows k listed in `ks` (increasing): the
// rows whose x[k] is not zero. One FMA chain per element in increasing k, as in in_out_tile, so leaving out the
// zero rows changes no bit of the result (an exact zero product added to a sum leaves it unchanged) while their
// bytes are never read: the sparse ReLU² FFN (ffn_value is stored InOut, one row per hidden unit).
// Memory: each thread owns a wide column range (~n_out / threads, at most kRowCols) and reads that part of every
// listed row in one pass, so a row is one contiguous run of up to 2 KiB rather than a few lines per pass of a
// narrow block (a new page per row, which the hardware prefetchers never caught). The accumulators live in an
// L1-resident array (exact: fp32 stored and reloaded). The gaps between listed rows are irregular, so the pass
// prefetches the row kRowAhead entries ahead itself.
template <DType D>
RWKV_AVX512 void in_out_rows(const MatmulArgs& a, const int32_t* ks, int n_k, int64_t o, int64_t cols) {
    const int64_t n_out = a.w->n_out;
    const Elem<D>* w = static_cast<const Elem<D>*>(a.w->data) + o;
    const int nv = int((cols + kLanes - 1) / kLanes);
    const __mmask16 last = __mmask16((1u << (cols - int64_t(nv - 1) * kLanes)) - 1);
    const int row_bytes = int(cols * int64_t(sizeof(Elem<D>)));
    alignas(64) float acc[kRowCols];
    for (int v = 0; v < nv; v++) _mm512_store_ps(acc + v * kLanes, _mm512_setzero_ps());
    for (int i = 0; i < n_k; i++) {
        if (i + kRowAhead < n_k) {
            const char* ahead = reinterpret_cast<const char*>(w + int64_t(ks[i + kRowAhead]) * n_out);
            for (int line = 0; line < row_bytes; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T1);
        }
        const int k = ks[i];
        const Elem<D>* wk = w + int64_t(k) * n_out;
        const __m512 xb = _mm512_set1_ps(a.x[k]);
        for (int v = 0; v < nv; v++) {
            float* av = acc + v * kLanes;
            const __m512 wv = load_cols<D>(wk + v * kLanes, v == nv - 1 ? last : __mmask16(0xffff));
            _mm512_store_ps(av, _mm512_fmadd_ps(wv, xb, _mm512_load_ps(av)));
        }
    }
    for (int v = 0; v < nv; v++) {
        const __mmask16 m = v == nv - 1 ? last : __mmask16(0xffff);
        __m512 r = _mm512_load_ps(acc + v * kLanes);
        if (a.accumulate) r = _mm512_add_ps(_mm512_maskz_loadu_ps(m, a.y + o + v * kLanes), r);
        _mm512_mask_storeu_ps(a.y + o + v * kLanes, m, r);
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
        thread_local AlignedBuffer wp_buf;  // grows once per thread, then reused
        out_in_gemm<D>(a, plan, b, e, xp, wp_buf.floats(plan.panel_rows / kGemmRows * plan.w_group_floats()));
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
        // Column blocks of whole vectors, about one per thread (at most kRowCols wide).
        const int64_t listed_work = int64_t(n_listed) * w.n_out;
        const int threads = listed_work < kSmallWork ? 1 : pool.size();
        const int64_t width =
            std::min<int64_t>(kRowCols, (w.n_out + threads * kLanes - 1) / (threads * kLanes) * kLanes);
        const int64_t col_blocks = (w.n_out + width - 1) / width;
        pool.parallel_for(col_blocks, listed_work < kSmallWork ? col_blocks : 1, [&](int64_t b, int64_t e) {
            for (int64_t j = b; j < e; j++)
                in_out_rows<D>(a, listed, n_listed, j * width, std::min(width, w.n_out - j * width));
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

void matmul_fast_avx512(const MatmulArgs& args, ThreadPool& pool) {
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
void matmul_fast_avx512(const MatmulArgs& args, ThreadPool& pool) {
    matmul_cpu(args, pool);
}
}  // namespace rwkv::detail

#endif
