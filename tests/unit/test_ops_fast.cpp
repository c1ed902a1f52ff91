// The fast CPU small ops (kernels/cpu/ops_fast.h) against their reference twins (kernels/cpu/*.cpp), at the real
// widths C = 768 .. 4096 and T = 1, 2, 63, 65, on inputs drawn like the model's: LN inputs N(0, σ) with 1%
// outliers of 10-30σ; r, k, v ~ N(0, 1); decay from the decay activation of N(0, 1) pre-activations, in (0.545, 1);
// a = σ(N(0, 1)); κ̂ unit-norm per head (from key_prep); states after 8 reference steps from random ones.
//
// Tolerances (max-abs error, relative to a per-op scale; each observed maximum is printed):
//   - layer_norm, time_mix_output: 1e-5 · (1 + |ref|). Both normalise with float-lane statistics instead of
//     double: relative error of mean and 1/σ ~ a few 2^-24 · sqrt(C), far below 1e-5, times values up to ~30.
//   - bias_act: tanh / σ / decay from the Cephes exp (< 2 ulp) against libm: 1e-6 absolute (outputs in (-1, 1)
//     or (0, 1)); None and ReluSq are the same IEEE operations: bitwise, zeros included.
//   - key_prep: κ̂ normalised in float (1e-6 relative); k', v' the same operations: bitwise.
//   - wkv7: y and the final state within 1e-4 · (1 + |ref|): each token adds three rounded products per state
//     element and two 64-term sums (lane order instead of sequential, ~1e-6 relative), carried by decays < 1.
// Plus, bitwise: 1 vs 3 threads; a T-token call vs T one-token calls (decode ≡ prefill) for every op.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/thread_pool.h"
#include "kernels/cpu/ops_fast.h"

namespace rwkv {
namespace {

const int kWidths[] = {768, 1024, 2048, 2560, 4096};
const int kTokens[] = {1, 2, 63, 65};

std::vector<float> normal(size_t n, std::mt19937& rng, float sigma = 1.0f, float outliers = 0.0f) {
    std::normal_distribution<float> nd(0.0f, sigma);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> x(n);
    for (float& v : x) {
        v = nd(rng);
        if (u(rng) < outliers) v = (v < 0 ? -sigma : sigma) * (10.0f + 20.0f * u(rng));
    }
    return x;
}

std::vector<float> mapped(std::vector<float> x, float (*f)(float)) {
    for (float& v : x) v = f(v);
    return x;
}
float sigmoid(float z) {
    return 1.0f / (1.0f + std::exp(-z));
}

// Largest |got - ref| / (1 + |ref|); also counts elements above `tol`.
double rel_err(const std::vector<float>& got, const std::vector<float>& ref, double tol, int* bad) {
    double worst = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        const double e = std::fabs(double(got[i]) - ref[i]) / (1.0 + std::fabs(ref[i]));
        if (!(e <= tol)) ++*bad;
        worst = std::max(worst, std::isnan(e) ? 1e30 : e);
    }
    return worst;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct Report {
    const char* op;
    double worst = 0;
    ~Report() { std::printf("%s: largest error %.2e\n", op, worst); }
};

TEST(OpsFast, LayerNorm) {
    std::mt19937 rng(1);
    ThreadPool pool1(1), pool3(3);
    Report rep{"layer_norm |fast - ref| / (1 + |ref|)"};
    for (int C : kWidths)
        for (int T : kTokens) {
            SCOPED_TRACE("C=" + std::to_string(C) + " T=" + std::to_string(T));
            const auto x = normal(size_t(T) * C, rng, 3.0f, 0.01f);
            const auto w = normal(C, rng, 0.3f), b = normal(C, rng, 0.1f);
            std::vector<float> ref(x.size()), got(x.size()), got3(x.size());
            layer_norm_cpu({x.data(), w.data(), b.data(), ref.data(), T, C});
            layer_norm_fast({x.data(), w.data(), b.data(), got.data(), T, C}, pool1);
            layer_norm_fast({x.data(), w.data(), b.data(), got3.data(), T, C}, pool3);
            int bad = 0;
            rep.worst = std::max(rep.worst, rel_err(got, ref, 1e-5, &bad));
            EXPECT_EQ(bad, 0);
            EXPECT_TRUE(same_bits(got, got3));
            std::vector<float> row(C);  // in place (y == x) and one row at a time
            std::copy_n(x.begin() + size_t(T - 1) * C, C, row.begin());
            layer_norm_fast({row.data(), w.data(), b.data(), row.data(), 1, C}, pool1);
            EXPECT_TRUE(same_bits(row, std::vector<float>(got.end() - C, got.end())));
        }
}

TEST(OpsFast, TokenShift) {
    std::mt19937 rng(2);
    ThreadPool pool1(1), pool3(3);
    for (int C : kWidths)
        for (int T : kTokens) {
            SCOPED_TRACE("C=" + std::to_string(C) + " T=" + std::to_string(T));
            const int B = 2;
            const auto u = normal(size_t(B) * T * C, rng);
            std::vector<std::vector<float>> mu(6), ref(6), got(6);
            for (int m = 0; m < 6; m++) {
                mu[m] = mapped(normal(C, rng), sigmoid);
                ref[m].resize(u.size());
                got[m].resize(u.size());
            }
            const auto prev0 = normal(size_t(B) * C, rng);
            std::vector<float> prev_ref = prev0, prev_got = prev0;
            float* pr[2] = {prev_ref.data(), prev_ref.data() + C};
            float* pg[2] = {prev_got.data(), prev_got.data() + C};
            TokenShiftArgs a{u.data(), pr, {}, {}, 6, B, T, C};
            for (int m = 0; m < 6; m++) {
                a.mu[m] = mu[m].data();
                a.out[m] = ref[m].data();
            }
            token_shift_cpu(a);
            a.prev = pg;
            for (int m = 0; m < 6; m++) a.out[m] = got[m].data();
            token_shift_fast(a, T > 60 ? pool3 : pool1);
            for (int m = 0; m < 6; m++) EXPECT_TRUE(same_bits(got[m], ref[m])) << "mix " << m;
            EXPECT_TRUE(same_bits(prev_got, prev_ref));
        }
}

TEST(OpsFast, BiasAct) {
    std::mt19937 rng(3);
    ThreadPool pool1(1), pool3(3);
    const struct {
        Activation act;
        const char* name;
        double tol;  // absolute; 0: bitwise
    } acts[] = {{Activation::None, "none", 0},
                {Activation::Tanh, "tanh", 1e-6},
                {Activation::Sigmoid, "sigmoid", 1e-6},
                {Activation::ReluSq, "relu_sq", 0},
                {Activation::Decay, "decay", 1e-6}};
    for (const auto& act : acts) {
        Report rep{act.name};
        for (int n : {64, 96, 100, 768, 4096, 16384})  // LoRA widths, an odd tail, C, F
            for (int T : kTokens) {
                SCOPED_TRACE(std::string(act.name) + " n=" + std::to_string(n) + " T=" + std::to_string(T));
                const auto y0 = normal(size_t(T) * n, rng, 2.0f, 0.01f);
                const auto b = normal(n, rng, 0.5f);
                std::vector<float> ref = y0, got = y0, got3 = y0;
                bias_act_cpu({ref.data(), b.data(), act.act, T, n});
                bias_act_fast({got.data(), b.data(), act.act, T, n}, pool1);
                bias_act_fast({got3.data(), b.data(), act.act, T, n}, pool3);
                EXPECT_TRUE(same_bits(got, got3));
                if (act.tol == 0) {
                    EXPECT_TRUE(same_bits(got, ref));
                    continue;
                }
                for (size_t i = 0; i < ref.size(); i++) {
                    const double e = std::fabs(double(got[i]) - ref[i]);
                    rep.worst = std::max(rep.worst, e);
                    ASSERT_LE(e, act.tol) << "i=" << i << " z=" << y0[i] + b[i % n];
                }
            }
    }
}

// Inputs of one time-mix step: r, w, k', v', κ̂, a for T tokens of B sequences (rows b·T + t).
struct MixInputs {
    std::vector<float> r, w, k, v, kk, a;
    MixInputs(int rows, int C, std::mt19937& rng) {
        r = normal(size_t(rows) * C, rng);
        w = mapped(normal(size_t(rows) * C, rng), [](float z) { return rwkv7_decay(z); });
        k = normal(size_t(rows) * C, rng);
        v = normal(size_t(rows) * C, rng);
        a = mapped(normal(size_t(rows) * C, rng), sigmoid);
        kk = normal(size_t(rows) * C, rng);
        const auto k_k = normal(C, rng, 1.0f), k_a = mapped(normal(C, rng), sigmoid);
        key_prep_cpu({k.data(), v.data(), kk.data(), a.data(), k_k.data(), k_a.data(), nullptr, nullptr, rows, C});
    }
};

TEST(OpsFast, KeyPrep) {
    std::mt19937 rng(4);
    ThreadPool pool1(1), pool3(3);
    Report rep{"key_prep κ̂ |fast - ref| / (1 + |ref|)"};
    for (int C : kWidths)
        for (int T : kTokens) {
            SCOPED_TRACE("C=" + std::to_string(C) + " T=" + std::to_string(T));
            const auto k0 = normal(size_t(T) * C, rng), v0 = normal(size_t(T) * C, rng);
            const auto a = mapped(normal(size_t(T) * C, rng), sigmoid);
            const auto vf = normal(size_t(T) * C, rng), vg = mapped(normal(size_t(T) * C, rng), sigmoid);
            const auto k_k = normal(C, rng), k_a = mapped(normal(C, rng), sigmoid);
            for (bool first : {true, false}) {
                std::vector<float> kr = k0, vr = v0, kkr(k0.size()), kg = k0, vgot = v0, kkg(k0.size());
                std::vector<float> kg3 = k0, vg3 = v0, kkg3(k0.size());
                auto args = [&](std::vector<float>& k, std::vector<float>& v, std::vector<float>& kk) {
                    return KeyPrepArgs{k.data(),
                                       v.data(),
                                       kk.data(),
                                       a.data(),
                                       k_k.data(),
                                       k_a.data(),
                                       first ? nullptr : vf.data(),
                                       first ? nullptr : vg.data(),
                                       T,
                                       C};
                };
                key_prep_cpu(args(kr, vr, kkr));
                key_prep_fast(args(kg, vgot, kkg), pool1);
                key_prep_fast(args(kg3, vg3, kkg3), pool3);
                EXPECT_TRUE(same_bits(kg, kr));
                EXPECT_TRUE(same_bits(vgot, vr));
                EXPECT_TRUE(same_bits(kkg, kkg3));
                int bad = 0;
                rep.worst = std::max(rep.worst, rel_err(kkg, kkr, 1e-6, &bad));
                EXPECT_EQ(bad, 0);
            }
        }
}

TEST(OpsFast, Wkv7) {
    std::mt19937 rng(5);
    ThreadPool pool1(1), pool3(3);
    Report rep{"wkv7 y and state |fast - ref| / (1 + |ref|)"};
    for (int C : kWidths)
        for (int T : kTokens) {
            SCOPED_TRACE("C=" + std::to_string(C) + " T=" + std::to_string(T));
            const int H = C / kHeadSize, B = 2, rows = B * T;
            const size_t SN = size_t(H) * kHeadSize * kHeadSize;
            // States from 8 reference steps of random inputs, from N(0, 0.3).
            std::vector<float> s0 = normal(B * SN, rng, 0.3f), y(size_t(rows) * C);
            {
                const MixInputs warm(B * 8, C, rng);
                float* st[2] = {s0.data(), s0.data() + SN};
                std::vector<float> yw(size_t(B) * 8 * C);
                wkv7_cpu({st, warm.r.data(), warm.w.data(), warm.k.data(), warm.v.data(), warm.kk.data(), warm.a.data(),
                          yw.data(), B, 8, H});
            }
            const MixInputs in(rows, C, rng);
            auto run = [&](std::vector<float>& s, std::vector<float>& out, int t0, int nt, auto&& fn) {
                std::vector<float> r2, w2, k2, v2, kk2, a2;  // tokens [t0, t0 + nt) of each sequence
                for (auto [src, dst] :
                     {std::pair{&in.r, &r2}, {&in.w, &w2}, {&in.k, &k2}, {&in.v, &v2}, {&in.kk, &kk2}, {&in.a, &a2}})
                    for (int b = 0; b < B; b++)
                        dst->insert(dst->end(), src->begin() + (size_t(b) * T + t0) * C,
                                    src->begin() + (size_t(b) * T + t0 + nt) * C);
                std::vector<float> yo(size_t(B) * nt * C);
                float* st[2] = {s.data(), s.data() + SN};
                fn(Wkv7Args{st, r2.data(), w2.data(), k2.data(), v2.data(), kk2.data(), a2.data(), yo.data(), B, nt,
                            H});
                for (int b = 0; b < B; b++)
                    std::copy_n(yo.begin() + size_t(b) * nt * C, size_t(nt) * C,
                                out.begin() + (size_t(b) * T + t0) * C);
            };
            std::vector<float> sr = s0, yr(y.size()), sg = s0, yg(y.size()), s3 = s0, y3(y.size()), s1 = s0,
                               y1(y.size());
            run(sr, yr, 0, T, [](const Wkv7Args& a) { wkv7_cpu(a); });
            run(sg, yg, 0, T, [&](const Wkv7Args& a) { wkv7_fast(a, pool1); });
            run(s3, y3, 0, T, [&](const Wkv7Args& a) { wkv7_fast(a, pool3); });
            for (int t = 0; t < T; t++) run(s1, y1, t, 1, [&](const Wkv7Args& a) { wkv7_fast(a, pool3); });
            int bad = 0;
            rep.worst = std::max({rep.worst, rel_err(yg, yr, 1e-4, &bad), rel_err(sg, sr, 1e-4, &bad)});
            EXPECT_EQ(bad, 0);
            EXPECT_TRUE(same_bits(yg, y3) && same_bits(sg, s3)) << "1 vs 3 threads";
            EXPECT_TRUE(same_bits(yg, y1) && same_bits(sg, s1)) << "prefill vs token by token";
        }
}

TEST(OpsFast, TimeMixOutput) {
    std::mt19937 rng(6);
    ThreadPool pool1(1), pool3(3);
    Report rep{"time_mix_output |fast - ref| / (1 + |ref|)"};
    for (int C : kWidths)
        for (int T : kTokens) {
            SCOPED_TRACE("C=" + std::to_string(C) + " T=" + std::to_string(T));
            const int H = C / kHeadSize;
            const MixInputs in(T, C, rng);
            const auto y = normal(size_t(T) * C, rng, 2.0f, 0.01f);
            const auto g = mapped(normal(size_t(T) * C, rng), sigmoid);
            const auto r_k = normal(C, rng, 0.3f), lw = normal(C, rng, 0.3f), lb = normal(C, rng, 0.1f);
            std::vector<float> ref(y.size()), got(y.size()), got3(y.size()), row(C);
            auto args = [&](const float* yy, float* out, int n) {
                return TimeMixOutputArgs{yy,        in.r.data(), in.k.data(), in.v.data(), g.data(), r_k.data(),
                                         lw.data(), lb.data(),   out,         n,           H};
            };
            time_mix_output_cpu(args(y.data(), ref.data(), T));
            time_mix_output_fast(args(y.data(), got.data(), T), pool1);
            time_mix_output_fast(args(y.data(), got3.data(), T), pool3);
            time_mix_output_fast(args(y.data(), row.data(), 1), pool1);
            int bad = 0;
            rep.worst = std::max(rep.worst, rel_err(got, ref, 1e-5, &bad));
            EXPECT_EQ(bad, 0);
            EXPECT_TRUE(same_bits(got, got3));
            EXPECT_TRUE(same_bits(row, std::vector<float>(got.begin(), got.begin() + C)));
        }
}

}  // namespace
}  // namespace rwkv
