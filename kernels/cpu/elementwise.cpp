#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/elementwise.h"

namespace rwkv {

void token_shift_cpu(const TokenShiftArgs& a) {
    for (int b = 0; b < a.B; b++) {
        for (int t = 0; t < a.T; t++) {
            const int64_t row = int64_t(b) * a.T + t;
            const float* u = a.u + row * a.C;
            const float* prev = t == 0 ? a.prev[b] : u - a.C;
            for (int m = 0; m < a.n_mix; m++) {
                float* out = a.out[m] + row * a.C;
                for (int i = 0; i < a.C; i++) out[i] = u[i] + (prev[i] - u[i]) * a.mu[m][i];
            }
        }
        std::copy_n(a.u + (int64_t(b) * a.T + a.T - 1) * a.C, a.C, a.prev[b]);
    }
}

void bias_act_cpu(const BiasActArgs& a) {
    for (int t = 0; t < a.T; t++) {
        float* y = a.y + int64_t(t) * a.n;
        for (int i = 0; i < a.n; i++) {
            float z = y[i] + (a.b ? a.b[i] : 0.0f);
            switch (a.act) {
                case Activation::None:
                    break;
                case Activation::Tanh:
                    z = std::tanh(z);
                    break;
                case Activation::Sigmoid:
                    z = 1.0f / (1.0f + std::exp(-z));
                    break;
                case Activation::ReluSq:
                    z = z > 0 ? z * z : 0.0f;
                    break;
                case Activation::Decay:
                    z = rwkv7_decay(z);
                    break;
            }
            y[i] = z;
        }
    }
}

}  // namespace rwkv
