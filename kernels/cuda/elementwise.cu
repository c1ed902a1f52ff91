// Per-element kernels: embedding gather, token shift with up to six mixes, bias + activation epilogues, row
// gather, dtype conversion. All are memory-bound one-pass kernels: one thread per output element (grid-stride),
// consecutive threads on consecutive channels, so every warp load/store is a coalesced 128-byte line.
//
// embed        x[t][c] = emb[tok[t]][c]                        reads T·C·4 + T·4, writes T·C·4 bytes
// token_shift  thread (b, t, c): out[m] = u + (u_prev - u)·mu[m] reads (2 + n_mix)·rows·C·4 (mu from L1/L2),
//              u_prev = u[b, t-1] or prev[b] at t = 0;          writes n_mix·rows·C·4
//              the thread at t = 0 also writes prev[b][c] = u[b, T-1][c] after reading the old value, so no
//              other thread touches prev[b][c] (no race between the read at t = 0 and the update)
// bias_act     y = act(y + b), act uniform per launch           reads/writes T·n·4
// copy_rows    dst[r] = src[row0 + r·stride]                    reads/writes n·C·4
// convert      dst = (dst_t) src                                 reads n·|src|, writes n·|dst|
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/launch.h"

namespace rwkv::cuda {
namespace {

using detail::ceil_div;

constexpr int kThreads = 256;
// Grid-stride launches: enough blocks to fill any current GPU, few enough that huge n never overflows a dim.
inline unsigned grid_for(int64_t n) {
    int64_t b = (n + kThreads - 1) / kThreads;
    return unsigned(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));
}

__global__ void embed_kernel(const int32_t* __restrict__ tokens, const float* __restrict__ emb, float* __restrict__ x,
                             int T, int C) {
    const int64_t n = int64_t(T) * C;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t t = e / C, c = e % C;
        x[e] = emb[int64_t(tokens[t]) * C + c];
    }
}

__global__ void token_shift_kernel(TokenShiftArgs a) {
    const int64_t n = int64_t(a.B) * a.T * a.C;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t row = e / a.C;
        const int c = int(e % a.C);
        const int b = int(row / a.T), t = int(row % a.T);
        const float u = a.u[e];
        float* prev_b = nullptr;
        float p;
        if (t == 0) {
            prev_b = a.prev[b];
            p = prev_b[c];
        } else {
            p = a.u[e - a.C];
        }
        const float d = p - u;
        for (int m = 0; m < a.n_mix; m++) a.out[m][e] = u + d * a.mu[m][c];
        if (t == 0) prev_b[c] = a.u[e + int64_t(a.T - 1) * a.C];  // after the read above: same thread
    }
}

__device__ __forceinline__ float apply_act(float z, Activation act) {
    switch (act) {
        case Activation::None:
            return z;
        case Activation::Tanh:
            return tanhf(z);
        case Activation::Sigmoid:
            return 1.0f / (1.0f + expf(-z));
        case Activation::ReluSq:
            return z > 0.0f ? z * z : 0.0f;
        case Activation::Decay: {
            constexpr float kExpMinusHalf = 0.60653065971263342f;  // as rwkv7_decay in kernels/elementwise.h
            return expf(-kExpMinusHalf / (1.0f + expf(-z)));
        }
    }
    return z;
}

__global__ void bias_act_kernel(float* __restrict__ y, const float* __restrict__ bias, Activation act, int T, int n) {
    const int64_t total = int64_t(T) * n;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
        float z = y[e] + (bias ? bias[e % n] : 0.0f);
        y[e] = apply_act(z, act);
    }
}

__global__ void copy_rows_kernel(const float* __restrict__ src, int64_t row0, int64_t stride, float* __restrict__ dst,
                                 int n_rows, int C) {
    const int64_t n = int64_t(n_rows) * C;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = e / C, c = e % C;
        dst[e] = src[(row0 + r * stride) * C + c];
    }
}

__device__ __forceinline__ float to_f32(const void* p, DType t, int64_t i) {
    switch (t) {
        case DType::F32:
            return static_cast<const float*>(p)[i];
        case DType::F16:
            return __half2float(static_cast<const __half*>(p)[i]);
        case DType::BF16:
            return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    }
    return 0.0f;
}

__global__ void convert_kernel(const void* src, DType src_t, void* dst, DType dst_t, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        if (src_t == dst_t) {  // a copy, bit for bit (keeps NaN payloads)
            if (src_t == DType::F32)
                static_cast<uint32_t*>(dst)[i] = static_cast<const uint32_t*>(src)[i];
            else
                static_cast<uint16_t*>(dst)[i] = static_cast<const uint16_t*>(src)[i];
            continue;
        }
        float f = to_f32(src, src_t, i);  // bf16/f16 -> f32 is exact
        switch (dst_t) {
            case DType::F32:
                static_cast<float*>(dst)[i] = f;
                break;
            case DType::F16:
                static_cast<__half*>(dst)[i] = __float2half_rn(f);
                break;
            case DType::BF16:
                static_cast<__nv_bfloat16*>(dst)[i] = __float2bfloat16_rn(f);
                break;
        }
    }
}

}  // namespace

void embed(const EmbedArgs& a, cudaStream_t s) {
    const int64_t n = int64_t(a.T) * a.C;
    if (n == 0) return;
    embed_kernel<<<grid_for(n), kThreads, 0, s>>>(a.tokens, a.emb, a.x, a.T, a.C);
    RWKV_CUDA_CHECK_LAUNCH("embed");
}

void token_shift(const TokenShiftArgs& a, cudaStream_t s) {
    const int64_t n = int64_t(a.B) * a.T * a.C;
    if (n == 0) return;
    if (a.n_mix < 0 || a.n_mix > 6) throw Error(RWKV_STATUS_INTERNAL, "cuda::token_shift: n_mix out of range");
    for (int m = 0; m < a.n_mix; m++)  // thread (b, t + 1) reads u[b, t], which thread (b, t) would overwrite
        if (a.out[m] == a.u) throw Error(RWKV_STATUS_INTERNAL, "cuda::token_shift: an output aliases u");
    token_shift_kernel<<<grid_for(n), kThreads, 0, s>>>(a);
    RWKV_CUDA_CHECK_LAUNCH("token_shift");
}

void bias_act(const BiasActArgs& a, cudaStream_t s) {
    const int64_t n = int64_t(a.T) * a.n;
    if (n == 0) return;
    bias_act_kernel<<<grid_for(n), kThreads, 0, s>>>(a.y, a.b, a.act, a.T, a.n);
    RWKV_CUDA_CHECK_LAUNCH("bias_act");
}

void copy_rows(const float* src, int64_t src_row0, int64_t src_row_stride, float* dst, int n_rows, int C,
               cudaStream_t s) {
    const int64_t n = int64_t(n_rows) * C;
    if (n == 0) return;
    copy_rows_kernel<<<grid_for(n), kThreads, 0, s>>>(src, src_row0, src_row_stride, dst, n_rows, C);
    RWKV_CUDA_CHECK_LAUNCH("copy_rows");
}

void convert(const void* src, DType src_t, void* dst, DType dst_t, int64_t n, cudaStream_t s) {
    if (n == 0) return;
    convert_kernel<<<grid_for(n), kThreads, 0, s>>>(src, src_t, dst, dst_t, n);
    RWKV_CUDA_CHECK_LAUNCH("convert");
}

}  // namespace rwkv::cuda
