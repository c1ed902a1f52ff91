#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/time_mix.h"

namespace rwkv {

void key_prep_cpu(const KeyPrepArgs& a) {
    const int N = kHeadSize;
    for (int64_t t = 0; t < a.T; t++) {
        float* k = a.k + t * a.C;
        float* v = a.v + t * a.C;
        float* kk = a.kk + t * a.C;
        const float* aa = a.a + t * a.C;
        for (int h0 = 0; h0 < a.C; h0 += N) {
            double norm2 = 0;  // κ = k ⊙ k_k, L2 per head (F.normalize: x / max(‖x‖, eps))
            for (int j = h0; j < h0 + N; j++) {
                kk[j] = k[j] * a.k_k[j];
                norm2 += double(kk[j]) * kk[j];
            }
            float inv = float(1.0 / std::max(std::sqrt(norm2), double(kL2NormEps)));
            for (int j = h0; j < h0 + N; j++) kk[j] *= inv;
        }
        for (int j = 0; j < a.C; j++) k[j] = k[j] * (1.0f + (aa[j] - 1.0f) * a.k_a[j]);
        if (a.v_gate) {
            const float* vf = a.v_first + t * a.C;
            const float* vg = a.v_gate + t * a.C;
            for (int j = 0; j < a.C; j++) v[j] = v[j] + (vf[j] - v[j]) * vg[j];
        }
    }
}

void wkv7_cpu(const Wkv7Args& a) {
    const int N = kHeadSize, C = a.H * N;
    for (int64_t bh = 0; bh < int64_t(a.B) * a.H; bh++) {
        const int64_t seq = bh / a.H, h = bh % a.H;
        float* S = a.state[seq] + h * N * N;
        for (int64_t t = 0; t < a.T; t++) {
            const int64_t o = (seq * a.T + t) * C + h * N;
            const float *r = a.r + o, *w = a.w + o, *k = a.k + o, *v = a.v + o, *kk = a.kk + o, *aa = a.a + o;
            float b[kHeadSize];  // κ̂ ⊙ a
            for (int j = 0; j < N; j++) b[j] = kk[j] * aa[j];
            for (int i = 0; i < N; i++) {
                float* row = S + i * N;
                float sa = 0;  // uses the old row
                for (int j = 0; j < N; j++) sa -= row[j] * kk[j];
                float y = 0;
                for (int j = 0; j < N; j++) {
                    row[j] = row[j] * w[j] + sa * b[j] + v[i] * k[j];
                    y += row[j] * r[j];
                }
                a.y[o + i] = y;
            }
        }
    }
}

void time_mix_output_cpu(const TimeMixOutputArgs& a) {
    const int N = kHeadSize, C = a.H * N;
    for (int64_t t = 0; t < a.T; t++) {
        for (int h = 0; h < a.H; h++) {
            const int64_t o = t * C + h * N;
            const float* y = a.y + o;
            double mean = 0, var = 0;
            for (int i = 0; i < N; i++) mean += y[i];
            mean /= N;
            for (int i = 0; i < N; i++) var += (y[i] - mean) * (y[i] - mean);
            var /= N;
            float inv = float(1.0 / std::sqrt(var + kGroupNormEps));
            float bonus = 0;  // Σ_j r_j k'_j r_k_j over the head
            for (int j = 0; j < N; j++) bonus += a.r[o + j] * a.k[o + j] * a.r_k[h * N + j];
            for (int i = 0; i < N; i++) {
                int c = h * N + i;
                float gn = (y[i] - float(mean)) * inv * a.ln_x_w[c] + a.ln_x_b[c];
                a.out[o + i] = (gn + bonus * a.v[o + i]) * a.g[o + i];
            }
        }
    }
}

}  // namespace rwkv
