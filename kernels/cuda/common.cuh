// Device helpers shared by the kernels in kernels/cuda/: weight loads with conversion to fp32, warp and block
// reductions in a fixed order (deterministic: every reduction tree depends only on the launch shape).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/check.h"

namespace rwkv::cuda::detail {

constexpr unsigned kFullMask = 0xffffffffu;

inline unsigned ceil_div(int64_t a, int64_t b) {
    return unsigned((a + b - 1) / b);
}

// Butterfly all-reduce over the 32 lanes: every lane ends with the same sum, combined in the same order.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
    return v;
}

// Block-wide sum; every thread gets the result. `red` is __shared__ float[32]. blockDim.x a multiple of 32.
// Contains __syncthreads(): call it from every thread of the block.
__device__ __forceinline__ float block_sum(float v, float* red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();  // red may still be read by a previous call
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float t = lane < nwarps ? red[lane] : 0.0f;
    return warp_sum(t);
}

// ---- Weight element types and 8-element loads (fp32 out).
template <typename W>
struct WeightTraits;
template <>
struct WeightTraits<float> {
    // 8 floats = two 16-byte loads; p must be 16-byte aligned.
    __device__ __forceinline__ static void load8(const float* p, float (&out)[8]) {
        float4 a = __ldg(reinterpret_cast<const float4*>(p));
        float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
        out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w;
        out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
    }
    __device__ __forceinline__ static float load1(const float* p) { return __ldg(p); }
};
template <>
struct WeightTraits<__half> {
    __device__ __forceinline__ static void load8(const __half* p, float (&out)[8]) {
        uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
        const __half2* h = reinterpret_cast<const __half2*>(&u);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float2 f = __half22float2(h[i]);
            out[2 * i] = f.x, out[2 * i + 1] = f.y;
        }
    }
    __device__ __forceinline__ static float load1(const __half* p) {
        return __half2float(__ldg(p));
    }
};
template <>
struct WeightTraits<__nv_bfloat16> {
    __device__ __forceinline__ static void load8(const __nv_bfloat16* p, float (&out)[8]) {
        uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
        const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {  // bf16 -> f32 is exact: the 16 bits become the high half
            out[2 * i] = __uint_as_float(w[i] << 16);
            out[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
        }
    }
    __device__ __forceinline__ static float load1(const __nv_bfloat16* p) {
        return __bfloat162float(__ldg(p));
    }
};

// 8 consecutive fp32 activations (16-byte aligned).
__device__ __forceinline__ void load8_f32(const float* p, float (&out)[8]) {
    float4 a = __ldg(reinterpret_cast<const float4*>(p));
    float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
    out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w;
    out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
}

inline bool aligned16(const void* p) {
    return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

}  // namespace rwkv::cuda::detail
