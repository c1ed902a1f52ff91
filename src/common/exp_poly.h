// The pieces of Cephes expf, written once for a float and for GCC/Clang vector-extension types (any F with
// lane-wise * + -): Cody-Waite reduction x = k ln2 + r and a degree-6 polynomial for e^r, |r| <= ln2/2, relative
// error below 2 ulp. Every product and sum is its own statement so that no compiler fuses them into an FMA (GCC
// in ISO mode uses -ffp-contract=off; clang contracts only within one expression): results are bit-identical
// across platforms and between the scalar and vector forms. Used by the sampler and the fast CPU kernels.
#pragma once

namespace rwkv::exp_poly {

constexpr float kLog2e = 1.44269504088896341f;
constexpr float kRound = 12582912.0f;      // 1.5 * 2^23: adding and subtracting rounds to an integer
constexpr float kLn2Hi = 0.693359375f;     // 9 significant bits: k * kLn2Hi is exact for |k| <= 2^15
constexpr float kLn2Lo = -2.12194440e-4f;  // ln 2 - kLn2Hi

template <typename F>
[[gnu::always_inline]] inline void poly(const F& r, F* out) {  // e^r for |r| <= ln2 / 2
    const F z = r * r;
    F p = r * 1.9875691500e-4f;
    p = p + 1.3981999507e-3f;
    p = p * r;
    p = p + 8.3334519073e-3f;
    p = p * r;
    p = p + 4.1665795894e-2f;
    p = p * r;
    p = p + 1.6666665459e-1f;
    p = p * r;
    p = p + 5.0000001201e-1f;
    p = p * z;
    p = p + r;
    p = p + 1.0f;
    *out = p;
}

template <typename F>
[[gnu::always_inline]] inline void reduce(const F& x, F* r_out, F* kf_out) {  // x = k ln2 + r, k as a float
    const F t = x * kLog2e;
    const F tr = t + kRound;
    const F kf = tr - kRound;  // round(x / ln 2)
    const F a = kf * kLn2Hi;
    const F r1 = x - a;
    const F b = kf * kLn2Lo;
    *kf_out = kf;
    *r_out = r1 - b;
}

}  // namespace rwkv::exp_poly
