// LayerNorm over rows: y[t] = (x[t] - mean) / sqrt(var + eps) * w + b, biased variance (PyTorch semantics).
#pragma once

namespace rwkv {

constexpr float kLayerNormEps = 1e-5f;

struct LayerNormArgs {
    const float* x;  // [T, C]
    const float* w;  // [C]
    const float* b;  // [C]
    float* y;        // [T, C]; may equal x
    int T, C;
};

void layer_norm_cpu(const LayerNormArgs& a);

}  // namespace rwkv
