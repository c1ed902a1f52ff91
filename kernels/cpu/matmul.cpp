// Reference matmul. Each output element is computed by exactly one thread in a fixed order, so results do not
// depend on the thread count. OutIn: one weight row converted to fp32 once, then dotted with every x row.
// InOut: a slab of weight columns converted once, accumulated as axpy over the input dimension.
#include <algorithm>
#include <vector>

#include "common/half.h"
#include "common/thread_pool.h"
#include "kernels/matmul.h"

namespace rwkv {
namespace {

// Converts n weights starting at element `offset` to fp32.
void load_f32(const WeightMatrix& w, int64_t offset, int n, float* out) {
    switch (w.dtype) {
        case DType::F32:
            std::copy_n(static_cast<const float*>(w.data) + offset, n, out);
            break;
        case DType::F16: {
            const uint16_t* p = static_cast<const uint16_t*>(w.data) + offset;
            for (int i = 0; i < n; i++) out[i] = f16_to_f32(p[i]);
            break;
        }
        case DType::BF16: {
            const uint16_t* p = static_cast<const uint16_t*>(w.data) + offset;
            for (int i = 0; i < n; i++) out[i] = bf16_to_f32(p[i]);
            break;
        }
    }
}

// Eight independent partial sums, combined pairwise: fixed order, vectorisable.
float dot(const float* a, const float* b, int n) {
    float acc[8] = {};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
    for (; i < n; i++) acc[i & 7] += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void matmul_out_in(const MatmulArgs& a, int64_t o_begin, int64_t o_end) {
    const WeightMatrix& w = *a.w;
    thread_local std::vector<float> row;  // grows once, then reused: no allocation per token
    row.resize(w.n_in);
    for (int64_t o = o_begin; o < o_end; o++) {
        load_f32(w, o * w.n_in, w.n_in, row.data());
        for (int t = 0; t < a.T; t++) {
            float s = dot(row.data(), a.x + int64_t(t) * w.n_in, w.n_in);
            float& y = a.y[int64_t(t) * w.n_out + o];
            y = a.accumulate ? y + s : s;
        }
    }
}

void matmul_in_out(const MatmulArgs& a, int64_t o_begin, int64_t o_end) {
    const WeightMatrix& w = *a.w;
    int n = int(o_end - o_begin);
    thread_local std::vector<float> col, acc;  // grow once, then reused
    col.resize(n);
    acc.assign(int64_t(a.T) * n, 0.0f);
    for (int i = 0; i < w.n_in; i++) {
        load_f32(w, int64_t(i) * w.n_out + o_begin, n, col.data());
        for (int t = 0; t < a.T; t++) {
            float xi = a.x[int64_t(t) * w.n_in + i];
            float* acc_t = acc.data() + int64_t(t) * n;
            for (int o = 0; o < n; o++) acc_t[o] += xi * col[o];
        }
    }
    for (int t = 0; t < a.T; t++)
        for (int o = 0; o < n; o++) {
            float& y = a.y[int64_t(t) * w.n_out + o_begin + o];
            y = a.accumulate ? y + acc[int64_t(t) * n + o] : acc[int64_t(t) * n + o];
        }
}

}  // namespace

void matmul_cpu(const MatmulArgs& args, ThreadPool& pool) {
    const WeightMatrix& w = *args.w;
    // Grain: enough rows per task that conversion buffers amortise; InOut slabs stay a multiple of 16 columns.
    int64_t grain = w.layout == WeightMatrix::Layout::OutIn ? 8 : 16;
    pool.parallel_for(w.n_out, grain, [&](int64_t b, int64_t e) {
        if (w.layout == WeightMatrix::Layout::OutIn)
            matmul_out_in(args, b, e);
        else
            matmul_in_out(args, b, e);
    });
}

}  // namespace rwkv
