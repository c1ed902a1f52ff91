// Fast CPU LayerNorm, token shift and bias + activation (kernels/cpu/ops_fast.h). Rows are independent: a call
// with many rows is split over the threads by rows.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "common/thread_pool.h"
#include "kernels/cpu/ops_fast.h"
#include "kernels/cpu/vec16.h"

namespace rwkv {
namespace detail {

using vec::kLanes;
using vec::V16f;

// Rows [t0, t1) of a LayerNorm. Mean and variance from 16 lane partial sums (a fixed tree), two passes.
RWKV_CPU_CLONES void layer_norm_rows(const LayerNormArgs& a, int64_t t0, int64_t t1) {
    const int C = a.C, full = C / kLanes * kLanes;
    for (int64_t t = t0; t < t1; t++) {
        const float* x = a.x + t * C;
        float* y = a.y + t * C;
        V16f s = {};
        for (int i = 0; i < full; i += kLanes) s += RWKV_VLOAD(x + i);
        float sum = vec::hsum(s);
        for (int i = full; i < C; i++) sum += x[i];
        const float mean = sum / float(C);
        V16f q = {};
        for (int i = 0; i < full; i += kLanes) {
            const V16f d = RWKV_VLOAD(x + i) - mean;
            q += d * d;
        }
        float var = vec::hsum(q);
        for (int i = full; i < C; i++) var += (x[i] - mean) * (x[i] - mean);
        const float inv = 1.0f / std::sqrt(var / float(C) + kLayerNormEps);
        for (int i = 0; i < full; i += kLanes)
            RWKV_VSTORE(y + i, (RWKV_VLOAD(x + i) - mean) * inv * RWKV_VLOAD(a.w + i) + RWKV_VLOAD(a.b + i));
        for (int i = full; i < C; i++) y[i] = (x[i] - mean) * inv * a.w[i] + a.b[i];
    }
}

// Rows [r0, r1) of the token shift's mixes (row = b·T + t; the previous row of u, or prev[b] for t = 0).
RWKV_CPU_CLONES void token_shift_rows(const TokenShiftArgs& a, int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; row++) {
        const int64_t b = row / a.T, t = row % a.T;
        const float* u = a.u + row * a.C;
        const float* prev = t == 0 ? a.prev[b] : u - a.C;
        for (int m = 0; m < a.n_mix; m++) {
            float* out = a.out[m] + row * a.C;
            const float* mu = a.mu[m];
            for (int i = 0; i < a.C; i++) out[i] = u[i] + (prev[i] - u[i]) * mu[i];
        }
    }
}

template <Activation A>
[[gnu::always_inline]] inline void activate(V16f& z) {
    if constexpr (A == Activation::Tanh) vec::tanh_inplace(z);
    if constexpr (A == Activation::Sigmoid) vec::sigmoid_inplace(z);
    if constexpr (A == Activation::ReluSq) z = (V16f)((vec::V16i)(z * z) & (z > 0.0f));  // exact zeros: sparse FFN
    if constexpr (A == Activation::Decay) {                                              // rwkv7_decay
        vec::sigmoid_inplace(z);
        z = -0.60653065971263342f * z;
        vec::exp_inplace(z);
    }
}

template <Activation A>
[[gnu::always_inline]] inline void bias_act_row(float* y, const float* b, int n) {
    int i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        V16f z = RWKV_VLOAD(y + i);
        if (b) z += RWKV_VLOAD(b + i);
        activate<A>(z);
        RWKV_VSTORE(y + i, z);
    }
    if (i < n) {  // the tail through a zero-padded vector, so it is computed exactly like the full lanes
        float tmp[kLanes] = {};
        std::copy(y + i, y + n, tmp);
        V16f z = RWKV_VLOAD(tmp);
        if (b) {
            float tb[kLanes] = {};
            std::copy(b + i, b + n, tb);
            z += RWKV_VLOAD(tb);
        }
        activate<A>(z);
        RWKV_VSTORE(tmp, z);
        std::copy(tmp, tmp + (n - i), y + i);
    }
}

RWKV_CPU_CLONES void bias_act_rows(const BiasActArgs& a, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
        float* y = a.y + t * a.n;
        switch (a.act) {
            case Activation::None:
                bias_act_row<Activation::None>(y, a.b, a.n);
                break;
            case Activation::Tanh:
                bias_act_row<Activation::Tanh>(y, a.b, a.n);
                break;
            case Activation::Sigmoid:
                bias_act_row<Activation::Sigmoid>(y, a.b, a.n);
                break;
            case Activation::ReluSq:
                bias_act_row<Activation::ReluSq>(y, a.b, a.n);
                break;
            case Activation::Decay:
                bias_act_row<Activation::Decay>(y, a.b, a.n);
                break;
        }
    }
}

}  // namespace detail

namespace {
constexpr int64_t kParallelFloats = 1 << 16;  // rows × width below which a call runs on the caller's thread

// Runs rows(t0, t1) over [0, rows), split over the pool when rows × width floats are worth it.
template <typename F>
void over_rows(ThreadPool& pool, int64_t rows, int64_t width, const F& body) {
    if (rows * width < kParallelFloats) {
        body(0, rows);
        return;
    }
    pool.parallel_for(rows, 1, [&](int64_t b, int64_t e) { body(b, e); });
}
}  // namespace

void layer_norm_fast(const LayerNormArgs& a, ThreadPool& pool) {
    over_rows(pool, a.T, a.C, [&](int64_t b, int64_t e) { detail::layer_norm_rows(a, b, e); });
}

void token_shift_fast(const TokenShiftArgs& a, ThreadPool& pool) {
    over_rows(pool, int64_t(a.B) * a.T, int64_t(a.n_mix) * a.C,
              [&](int64_t b, int64_t e) { detail::token_shift_rows(a, b, e); });
    for (int b = 0; b < a.B; b++) std::copy_n(a.u + (int64_t(b) * a.T + a.T - 1) * a.C, a.C, a.prev[b]);
}

void bias_act_fast(const BiasActArgs& a, ThreadPool& pool) {
    over_rows(pool, a.T, a.n, [&](int64_t b, int64_t e) { detail::bias_act_rows(a, b, e); });
}

}  // namespace rwkv
