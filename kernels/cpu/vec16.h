// 16 fp32 lanes as a GCC/Clang vector-extension type, for the small fast CPU kernels (kernels/cpu/*_fast.cpp).
// Written once: each kernel is compiled with target_clones (RWKV_CPU_CLONES) for x86-64-v4 (one zmm per vector),
// x86-64-v3 (two ymm) and the baseline (four xmm), and the loader's ifunc picks the clone at load time. Lane-wise
// operations only, no FMA contraction (ISO mode), so every clone computes exactly the same IEEE operations.
#pragma once

#include <cstdint>
#include <cstring>

#include "common/exp_poly.h"

// Not under ThreadSanitizer: clang instruments the clones' ifunc resolver, which the dynamic loader runs before the
// TSan runtime exists (a crash at startup); the baseline code is used instead.
#if defined(__SANITIZE_THREAD__)
#define RWKV_CPU_NO_CLONES 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RWKV_CPU_NO_CLONES 1
#endif
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(RWKV_CPU_NO_CLONES)
#define RWKV_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RWKV_CPU_CLONES
#endif

namespace rwkv::vec {

constexpr int kLanes = 16;
typedef float V16f __attribute__((vector_size(64)));
typedef int32_t V16i __attribute__((vector_size(64)));

// No helper takes or returns a vector by value: the helpers are called from target_clones functions, and clang
// refuses a 64-byte vector passed across a call whose caller and callee differ in AVX-512 (even always_inline
// ones, before inlining). So loads and stores are expressions, and the rest work in place or through references.
typedef float V16fu __attribute__((vector_size(64), aligned(4)));  // 16 floats at any float-aligned address

#define RWKV_VEC_INLINE [[gnu::always_inline]] inline

}  // namespace rwkv::vec

// RWKV_VLOAD(p): the 16 floats at p as a V16f; RWKV_VSTORE(p, v): writes them. (Vector types alias their
// element type in GCC and clang.)
#define RWKV_VLOAD(p) (*reinterpret_cast<const ::rwkv::vec::V16fu*>(p))
#define RWKV_VSTORE(p, v) (*reinterpret_cast<::rwkv::vec::V16fu*>(p) = (v))

namespace rwkv::vec {

// Sum of the 16 lanes in a fixed tree: (l, l+8), then (l, l+4), (l, l+2), (l, l+1).
RWKV_VEC_INLINE float hsum(const V16f& v) {
    float s[8];
    for (int l = 0; l < 8; l++) s[l] = v[l] + v[l + 8];
    for (int l = 0; l < 4; l++) s[l] = s[l] + s[l + 4];
    for (int l = 0; l < 2; l++) s[l] = s[l] + s[l + 2];
    return s[0] + s[1];
}

// x <- e^x lane-wise for any x: clamped to [-87, 88] (e^-87 = 1.6e-38, e^88 = 1.7e38), Cephes expf
// (common/exp_poly.h), relative error below 2 ulp inside the range.
RWKV_VEC_INLINE void exp_inplace(V16f& x) {
    const V16f lo = V16f{} - 87.0f, hi = V16f{} + 88.0f;
    V16i m = x > lo;  // lanes all-ones or zero; a NaN lane takes lo, then stays
    x = (V16f)((m & (V16i)x) | (~m & (V16i)lo));
    m = x < hi;
    x = (V16f)((m & (V16i)x) | (~m & (V16i)hi));
    V16f r, kf, p;
    exp_poly::reduce(x, &r, &kf);
    exp_poly::poly(r, &p);
    const V16i k = __builtin_convertvector(kf, V16i);  // exact: kf is an integer in [-126, 127]
    x = p * (V16f)((k + 127) << 23);                   // p · 2^k
}

// x <- σ(x) lane-wise.
RWKV_VEC_INLINE void sigmoid_inplace(V16f& x) {
    V16f e = -x;
    exp_inplace(e);
    x = 1.0f / (1.0f + e);
}

// x <- tanh(x) = sign(x) (1 - e) / (1 + e) with e = e^{-2|x|} in (0, 1]: absolute error ~1e-7.
RWKV_VEC_INLINE void tanh_inplace(V16f& x) {
    const V16i sign = (V16i)x & int32_t(0x80000000u);
    V16f e = -2.0f * (V16f)((V16i)x & 0x7fffffff);
    exp_inplace(e);
    const V16f t = (1.0f - e) / (1.0f + e);
    x = (V16f)((V16i)t | sign);
}

}  // namespace rwkv::vec
