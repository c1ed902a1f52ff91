#include <cmath>

#include "kernels/norm.h"

namespace rwkv {

void layer_norm_cpu(const LayerNormArgs& a) {
    for (int t = 0; t < a.T; t++) {
        const float* x = a.x + int64_t(t) * a.C;
        float* y = a.y + int64_t(t) * a.C;
        // Two passes with double accumulators: exact enough that the rounding of the statistics never shows.
        double mean = 0;
        for (int i = 0; i < a.C; i++) mean += x[i];
        mean /= a.C;
        double var = 0;
        for (int i = 0; i < a.C; i++) var += (x[i] - mean) * (x[i] - mean);
        var /= a.C;
        float inv = float(1.0 / std::sqrt(var + kLayerNormEps));
        float m = float(mean);
        for (int i = 0; i < a.C; i++) y[i] = (x[i] - m) * inv * a.w[i] + a.b[i];
    }
}

}  // namespace rwkv
