// LayerNorm over rows (kernels/norm.h): y = (x - mean) / sqrt(var + eps) · w + b, biased variance, eps 1e-5.
//
// Algorithm: exact two-pass statistics in fp32 (mean first, then Σ (x - mean)², so large outliers and a large
// common offset cost no precision, unlike E[x²] - E[x]²), then one pass that writes y. The row is re-read from
// L1/L2 in passes 2 and 3 (C·4 ≤ 16 KB for the real widths).
// Mapping: one block of 256 threads per row; thread i handles channels i, i + 256, ...; block reduction by warp
// shuffles then shared memory in a fixed order (deterministic).
// Layout: x, y [T, C] row-major fp32; w, b [C]. y may equal x (each element is read then written by one thread).
// Bytes: reads T·C·4 (+ C·8 for w, b, cached), writes T·C·4. Bound: memory/latency (one block per row).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/launch.h"

namespace rwkv::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads)
    layer_norm_kernel(const float* x, const float* __restrict__ w, const float* __restrict__ b, float* y, int C) {
    __shared__ float red[32];
    const int64_t off = int64_t(blockIdx.x) * C;
    const float* xr = x + off;
    float* yr = y + off;
    float s = 0.0f;
    for (int i = threadIdx.x; i < C; i += kThreads) s += xr[i];
    const float mean = detail::block_sum(s, red) / float(C);
    float q = 0.0f;
    for (int i = threadIdx.x; i < C; i += kThreads) {
        const float d = xr[i] - mean;
        q += d * d;
    }
    const float var = detail::block_sum(q, red) / float(C);
    const float inv = 1.0f / sqrtf(var + kLayerNormEps);  // IEEE sqrt and division, as close to the CPU as fp32 gets
    for (int i = threadIdx.x; i < C; i += kThreads) yr[i] = (xr[i] - mean) * inv * w[i] + b[i];
}

}  // namespace

void layer_norm(const LayerNormArgs& a, cudaStream_t s) {
    if (a.T == 0) return;
    layer_norm_kernel<<<a.T, kThreads, 0, s>>>(a.x, a.w, a.b, a.y, a.C);
    RWKV_CUDA_CHECK_LAUNCH("layer_norm");
}

}  // namespace rwkv::cuda
