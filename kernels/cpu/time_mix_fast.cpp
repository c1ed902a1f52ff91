// Fast CPU key preparation, WKV-7 recurrence and GroupNorm + bonus + gate (kernels/cpu/ops_fast.h; the math and
// the state layout S[h][i = value][j = key] are in kernels/time_mix.h). A head is 64 channels = 4 vectors.
//
// WKV: one (sequence, head) pair per work item, its tokens in order. Per token, for each state row i (4 vectors
// along j): sa_i = -Σ_j S[i][j] κ̂_j (lane partial sums, hsum), then S[i][:] = S[i][:] ⊙ w + sa_i (κ̂ ⊙ a) + v_i k,
// and y_i = Σ_j S[i][j] r_j from the updated row while it is still in registers. The state row is read and
// written once per token: 16 KiB per head, from L1/L2 (a head's state stays cache-resident across the tokens
// of a prefill chunk). 5 vector multiply-adds per 16 state elements.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "common/thread_pool.h"
#include "kernels/cpu/ops_fast.h"
#include "kernels/cpu/vec16.h"

namespace rwkv {
namespace detail {

using vec::V16f;
constexpr int kVecs = kHeadSize / vec::kLanes;  // 4 vectors per head
static_assert(kHeadSize % vec::kLanes == 0);

RWKV_CPU_CLONES void key_prep_rows(const KeyPrepArgs& a, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
        float* k = a.k + t * a.C;
        float* v = a.v + t * a.C;
        float* kk = a.kk + t * a.C;
        const float* aa = a.a + t * a.C;
        for (int h0 = 0; h0 < a.C; h0 += kHeadSize) {
            V16f x[kVecs], n2 = {};
            for (int q = 0; q < kVecs; q++) {
                const int j = h0 + q * vec::kLanes;
                x[q] = RWKV_VLOAD(k + j) * RWKV_VLOAD(a.k_k + j);
                n2 += x[q] * x[q];
            }
            const float inv = 1.0f / std::max(std::sqrt(vec::hsum(n2)), kL2NormEps);
            for (int q = 0; q < kVecs; q++) RWKV_VSTORE(kk + h0 + q * vec::kLanes, x[q] * inv);
        }
        for (int j = 0; j < a.C; j += vec::kLanes) {
            const V16f kj = RWKV_VLOAD(k + j);
            RWKV_VSTORE(k + j, kj * (1.0f + (RWKV_VLOAD(aa + j) - 1.0f) * RWKV_VLOAD(a.k_a + j)));
        }
        if (a.v_gate) {
            const float* vf = a.v_first + t * a.C;
            const float* vg = a.v_gate + t * a.C;
            for (int j = 0; j < a.C; j += vec::kLanes) {
                const V16f vj = RWKV_VLOAD(v + j);
                RWKV_VSTORE(v + j, vj + (RWKV_VLOAD(vf + j) - vj) * RWKV_VLOAD(vg + j));
            }
        }
    }
}

// Tokens [0, T) of one (sequence b, head h) pair.
RWKV_CPU_CLONES void wkv7_head(const Wkv7Args& a, int64_t b, int64_t h) {
    const int N = kHeadSize;
    const int64_t C = int64_t(a.H) * N;
    float* S = a.state[b] + h * N * N;
    for (int64_t t = 0; t < a.T; t++) {
        const int64_t o = (b * a.T + t) * C + h * N;
        V16f r[kVecs], w[kVecs], k[kVecs], kk[kVecs], ka[kVecs];
        for (int q = 0; q < kVecs; q++) {
            const int64_t j = o + q * vec::kLanes;
            r[q] = RWKV_VLOAD(a.r + j);
            w[q] = RWKV_VLOAD(a.w + j);
            k[q] = RWKV_VLOAD(a.k + j);
            kk[q] = RWKV_VLOAD(a.kk + j);
            ka[q] = kk[q] * RWKV_VLOAD(a.a + j);
        }
        const float* v = a.v + o;
        for (int i = 0; i < N; i++) {
            float* row = S + i * N;
            V16f s[kVecs], p = {};
            for (int q = 0; q < kVecs; q++) {
                s[q] = RWKV_VLOAD(row + q * vec::kLanes);
                p += s[q] * kk[q];
            }
            const float sa = -vec::hsum(p);
            const float vi = v[i];
            V16f y = {};
            for (int q = 0; q < kVecs; q++) {
                s[q] = s[q] * w[q] + sa * ka[q] + vi * k[q];
                RWKV_VSTORE(row + q * vec::kLanes, s[q]);
                y += s[q] * r[q];
            }
            a.y[o + i] = vec::hsum(y);
        }
    }
}

RWKV_CPU_CLONES void time_mix_output_rows(const TimeMixOutputArgs& a, int64_t t0, int64_t t1) {
    const int N = kHeadSize, C = a.H * N;
    for (int64_t t = t0; t < t1; t++) {
        for (int h = 0; h < a.H; h++) {
            const int64_t o = t * C + h * N;
            V16f y[kVecs], sum = {}, bonus = {};
            for (int q = 0; q < kVecs; q++) {
                const int64_t j = o + q * vec::kLanes;
                y[q] = RWKV_VLOAD(a.y + j);
                sum += y[q];
                bonus += RWKV_VLOAD(a.r + j) * RWKV_VLOAD(a.k + j) * RWKV_VLOAD(a.r_k + h * N + q * vec::kLanes);
            }
            const float mean = vec::hsum(sum) / float(N);
            V16f var = {};
            for (int q = 0; q < kVecs; q++) {
                y[q] = y[q] - mean;
                var += y[q] * y[q];
            }
            const float inv = 1.0f / std::sqrt(vec::hsum(var) / float(N) + kGroupNormEps);
            const float bs = vec::hsum(bonus);
            for (int q = 0; q < kVecs; q++) {
                const int64_t j = o + q * vec::kLanes;
                const int c = h * N + q * vec::kLanes;
                const V16f gn = y[q] * inv * RWKV_VLOAD(a.ln_x_w + c) + RWKV_VLOAD(a.ln_x_b + c);
                RWKV_VSTORE(a.out + j, (gn + bs * RWKV_VLOAD(a.v + j)) * RWKV_VLOAD(a.g + j));
            }
        }
    }
}

}  // namespace detail

namespace {
constexpr int64_t kParallelFloats = 1 << 16;  // rows × width below which a row op runs on the caller's thread
constexpr int64_t kParallelWkv = 1 << 15;     // state elements × tokens below which the WKV runs on one thread
}  // namespace

void key_prep_fast(const KeyPrepArgs& a, ThreadPool& pool) {
    if (int64_t(a.T) * a.C < kParallelFloats) return detail::key_prep_rows(a, 0, a.T);
    pool.parallel_for(a.T, 1, [&](int64_t b, int64_t e) { detail::key_prep_rows(a, b, e); });
}

void wkv7_fast(const Wkv7Args& a, ThreadPool& pool) {
    const int64_t pairs = int64_t(a.B) * a.H;
    auto run = [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; p++) detail::wkv7_head(a, p / a.H, p % a.H);
    };
    if (pairs * a.T * kHeadSize * kHeadSize < kParallelWkv) return run(0, pairs);
    pool.parallel_for(pairs, 1, run);
}

void time_mix_output_fast(const TimeMixOutputArgs& a, ThreadPool& pool) {
    const int64_t C = int64_t(a.H) * kHeadSize;
    if (a.T * C < kParallelFloats) return detail::time_mix_output_rows(a, 0, a.T);
    pool.parallel_for(a.T, 1, [&](int64_t b, int64_t e) { detail::time_mix_output_rows(a, b, e); });
}

}  // namespace rwkv
