// Matrix products with the checkpoint's weights: Y[T, n_out] (=|+=) X[T, n_in] · Wᵀ, weights in f32/f16/bf16 used
// in place (converted to fp32 in registers), fp32 arithmetic. The CPU version is the readable reference; T = 1 and
// T > 1 run the same code, so decode and prefill give bitwise-identical results.
#pragma once

#include <cstdint>

#include "io/tensor.h"

namespace rwkv {

class ThreadPool;

// A weight matrix as stored in the checkpoint, without copying.
//   OutIn: element (o, i) at data[o * n_in + i]  (nn.Linear weight, e.g. att.key.weight [C_out, C_in])
//   InOut: element (o, i) at data[i * n_out + o] (native LoRA matrices used as x @ w1, e.g. att.w1 [C, Dw])
struct WeightMatrix {
    enum class Layout { OutIn, InOut };
    const void* data = nullptr;
    DType dtype = DType::F32;
    int n_out = 0;
    int n_in = 0;
    Layout layout = Layout::OutIn;
};

struct MatmulArgs {
    const WeightMatrix* w;
    const float* x;  // [T, n_in]
    float* y;        // [T, n_out]
    int T;
    bool accumulate;  // y += x·Wᵀ instead of y = x·Wᵀ
};

void matmul_cpu(const MatmulArgs& args, ThreadPool& pool);

}  // namespace rwkv
