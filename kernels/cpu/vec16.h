// 16 fp32 lanes as a GCC/Clang vector-extension type, for the small fast CPU kernels (kernels/cpu/*_fast.cpp).
// Written once: each kernel is compiled with target_clones (RWKV_CPU_CLONES) for x86-64-v4 (one zmm per vector),
// x86-64-v3 (two ymm) and the baseline (four xmm), and the loader's ifunc picks the clone at load time. Lane-wise
// operations only, no FMA contraction (ISO mode), so every clone computes exactly the same IEEE operations.
#pragma once

#include <cstdint>
#include <cstring>

#include "common/exp_poly.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RWKV_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RWKV_CPU_CLONES
#endif

// GCC notes that passing 64-byte vectors by value changes the ABI between targets; these helpers are always
// inlined, so no such call exists.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace rwkv::vec {

constexpr int kLanes = 16;
typedef float V16f __attribute__((vector_size(64)));
typedef int32_t V16i __attribute__((vector_size(64)));

#define RWKV_VEC_INLINE [[gnu::always_inline]] inline

RWKV_VEC_INLINE V16f load(const float* p) {
    V16f v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}
RWKV_VEC_INLINE void store(float* p, V16f v) {
    std::memcpy(p, &v, sizeof(v));
}
RWKV_VEC_INLINE V16f splat(float x) {
    return V16f{} + x;
}
RWKV_VEC_INLINE V16f select(V16i mask, V16f a, V16f b) {  // mask lanes are all-ones or zero
    return (V16f)((mask & (V16i)a) | (~mask & (V16i)b));
}
RWKV_VEC_INLINE V16f max(V16f a, V16f b) {
    return select(a > b, a, b);
}
RWKV_VEC_INLINE V16f min(V16f a, V16f b) {
    return select(a < b, a, b);
}

// Sum of the 16 lanes in a fixed tree: (l, l+8), then (l, l+4), (l, l+2), (l, l+1).
RWKV_VEC_INLINE float hsum(V16f v) {
    float s[8];
    for (int l = 0; l < 8; l++) s[l] = v[l] + v[l + 8];
    for (int l = 0; l < 4; l++) s[l] = s[l] + s[l + 4];
    for (int l = 0; l < 2; l++) s[l] = s[l] + s[l + 2];
    return s[0] + s[1];
}

// e^x lane-wise for any x: clamped to [-87, 88] (e^-87 = 1.6e-38, e^88 = 1.7e38), Cephes expf (common/exp_poly.h),
// relative error below 2 ulp inside the range.
RWKV_VEC_INLINE V16f exp(V16f x) {
    x = min(max(x, splat(-87.0f)), splat(88.0f));
    V16f r, kf, p;
    exp_poly::reduce(x, &r, &kf);
    exp_poly::poly(r, &p);
    const V16i k = __builtin_convertvector(kf, V16i);  // exact: kf is an integer in [-126, 127]
    const V16f scale = (V16f)((k + 127) << 23);        // 2^k
    return p * scale;
}

RWKV_VEC_INLINE V16f sigmoid(V16f x) {
    return 1.0f / (1.0f + exp(-x));
}

// tanh(x) = sign(x) (1 - e) / (1 + e) with e = e^{-2|x|} in (0, 1]: absolute error ~1e-7.
RWKV_VEC_INLINE V16f tanh(V16f x) {
    const V16i sign = (V16i)x & int32_t(0x80000000u);
    const V16f ax = (V16f)((V16i)x & 0x7fffffff);
    const V16f e = exp(-2.0f * ax);
    const V16f t = (1.0f - e) / (1.0f + e);
    return (V16f)((V16i)t | sign);
}

}  // namespace rwkv::vec
