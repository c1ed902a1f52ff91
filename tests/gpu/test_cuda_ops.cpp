// Each CUDA kernel (kernels/cuda/launch.h) against its CPU twin (kernels/cpu/*), over the real widths
// C ∈ {768, 1024, 2048, 2560, 4096} and T ∈ {1, 2, 63, 64, 65, 512} where T applies, with inputs drawn like the
// model's (decay from N(0,1) pre-activations through the decay activation, a in (0, 1), κ̂ unit-norm per head, LN
// inputs with outliers, WKV states from real recurrent steps; never zeros). Every test skips with a visible message
// when no CUDA device is present. Tolerances and why: docs/cuda-kernels.md §Tolerances. The error measure is
// max |gpu - cpu| / max |cpu| over the output ("relative to the output's scale"), except the GEMV, which is
// checked per element against 1e-5 · (Σ_i |w_oi x_ti| + |y0|) like tests/unit/test_matmul_fast.cpp.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/device.h"
#include "common/half.h"
#include "common/thread_pool.h"
#include "kernels/cuda/launch.h"
#include "text/sampler.h"

namespace rwkv {
namespace {

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call << ": " << cudaGetErrorString(cudaGetLastError())

// Skips the test, visibly, when there is no device.
#define SKIP_WITHOUT_GPU()                                                                       \
    do {                                                                                         \
        if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test not run"; \
    } while (0)

const int kWidths[] = {768, 1024, 2048, 2560, 4096};
const int kTokens[] = {1, 2, 63, 64, 65, 512};

// ---- device memory

template <typename T>
class DeviceArray {
  public:
    explicit DeviceArray(size_t n) : n_(n) {
        void* raw = nullptr;
        if (cudaMalloc(&raw, std::max<size_t>(n, 1) * sizeof(T)) == cudaSuccess) {
            p_ = static_cast<T*>(raw);
        } else {
            ADD_FAILURE() << "cudaMalloc of " << n * sizeof(T) << " bytes failed";
        }
    }
    explicit DeviceArray(const std::vector<T>& h) : DeviceArray(h.size()) { upload(h); }
    ~DeviceArray() {
        if (p_) cudaFree(p_);
    }
    DeviceArray(const DeviceArray&) = delete;
    DeviceArray& operator=(const DeviceArray&) = delete;
    T* get() const { return p_; }
    size_t size() const { return n_; }
    void upload(const std::vector<T>& h) {
        EXPECT_EQ(h.size(), n_);
        EXPECT_EQ(cudaMemcpy(p_, h.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
    }
    std::vector<T> download() const {
        std::vector<T> h(n_);
        EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess) << cudaGetErrorString(cudaGetLastError());
        EXPECT_EQ(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
        return h;
    }

  private:
    T* p_ = nullptr;
    size_t n_;
};

// ---- inputs

struct Gen {
    std::mt19937 rng;
    explicit Gen(uint32_t seed) : rng(seed) {}
    float normal(float sd = 1.0f) {
        float v = std::normal_distribution<float>(0.0f, sd)(rng);
        return v == 0.0f ? 1e-3f : v;
    }
    float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }
    std::vector<float> normals(size_t n, float sd = 1.0f) {
        std::vector<float> v(n);
        for (auto& x : v) x = normal(sd);
        return v;
    }
    std::vector<float> uniforms(size_t n, float lo, float hi) {
        std::vector<float> v(n);
        for (auto& x : v) x = uniform(lo, hi);
        return v;
    }
    std::vector<float> sigmoids(size_t n) {  // σ(N(0, 1)): in (0, 1), like a, the gates
        std::vector<float> v(n);
        for (auto& x : v) x = 1.0f / (1.0f + std::exp(-normal()));
        return v;
    }
    std::vector<float> decays(size_t n) {  // the decay activation of N(0, 1) pre-activations: (0.545, 1)
        std::vector<float> v(n);
        for (auto& x : v) x = rwkv7_decay(normal());
        return v;
    }
    std::vector<float> unit_heads(size_t rows, int C) {  // κ̂: unit norm per head of 64
        std::vector<float> v = normals(rows * C);
        for (size_t h0 = 0; h0 < v.size(); h0 += kHeadSize) {
            double n2 = 0;
            for (int j = 0; j < kHeadSize; j++) n2 += double(v[h0 + j]) * v[h0 + j];
            const float inv = float(1.0 / std::sqrt(n2));
            for (int j = 0; j < kHeadSize; j++) v[h0 + j] *= inv;
        }
        return v;
    }
};

// max |a - ref| / max |ref|
double rel_err(const std::vector<float>& a, const std::vector<float>& ref) {
    double e = 0, m = 0;
    for (size_t i = 0; i < a.size(); i++) {
        e = std::max(e, std::fabs(double(a[i]) - double(ref[i])));
        m = std::max(m, std::fabs(double(ref[i])));
    }
    if (e != e) return INFINITY;  // NaN
    return m > 0 ? e / m : e;
}
bool all_finite(const std::vector<float>& a) {
    return std::all_of(a.begin(), a.end(), [](float x) { return std::isfinite(x); });
}

std::string label(int C, int T) {
    return "C=" + std::to_string(C) + " T=" + std::to_string(T);
}

class CudaOps : public ::testing::Test {
  protected:
    void SetUp() override { SKIP_WITHOUT_GPU(); }
};

// ============================================================================================ small ops

TEST_F(CudaOps, Embed) {
    SKIP_WITHOUT_GPU();
    Gen g(1);
    const int V = 1000;
    for (int C : kWidths) {
        std::vector<float> emb = g.normals(size_t(V) * C);
        std::vector<int32_t> tok(70);
        for (auto& t : tok) t = int32_t(g.rng() % V);
        DeviceArray<float> d_emb(emb), d_x(tok.size() * C);
        DeviceArray<int32_t> d_tok(tok);
        cuda::embed({d_tok.get(), d_emb.get(), d_x.get(), int(tok.size()), C}, nullptr);
        std::vector<float> x = d_x.download(), ref(tok.size() * C);
        for (size_t t = 0; t < tok.size(); t++) std::copy_n(emb.begin() + size_t(tok[t]) * C, C, ref.begin() + t * C);
        EXPECT_EQ(x, ref) << "C=" << C;
    }
}

TEST_F(CudaOps, LayerNorm) {
    SKIP_WITHOUT_GPU();
    Gen g(2);
    for (int C : kWidths)
        for (int T : kTokens) {
            std::vector<float> x = g.normals(size_t(T) * C, 2.0f);
            for (int i = 0; i < 5 * T; i++) x[g.rng() % x.size()] *= 40.0f;  // a few large outliers per row
            for (int t = 0; t < T; t++) x[size_t(t) * C] += 30.0f;           // and an offset channel
            std::vector<float> w = g.normals(C, 0.3f), b = g.normals(C, 0.2f);
            for (auto& v : w) v += 1.0f;
            std::vector<float> ref(x.size());
            layer_norm_cpu({x.data(), w.data(), b.data(), ref.data(), T, C});
            DeviceArray<float> d_x(x), d_w(w), d_b(b), d_y(x.size());
            cuda::layer_norm({d_x.get(), d_w.get(), d_b.get(), d_y.get(), T, C}, nullptr);
            std::vector<float> y = d_y.download();
            EXPECT_LE(rel_err(y, ref), 2e-6) << label(C, T);
            // in place (y == x)
            cuda::layer_norm({d_x.get(), d_w.get(), d_b.get(), d_x.get(), T, C}, nullptr);
            EXPECT_EQ(d_x.download(), y) << "in place, " << label(C, T);
        }
}

TEST_F(CudaOps, TokenShift) {
    SKIP_WITHOUT_GPU();
    Gen g(3);
    for (int C : kWidths)
        for (int T : kTokens)
            for (int n_mix : {6, 1}) {
                const int B = T >= 512 ? 1 : 3;
                const size_t rows = size_t(B) * T;
                std::vector<float> u = g.normals(rows * C);
                std::vector<std::vector<float>> prev(B), mu(6);
                for (auto& p : prev) p = g.normals(C);
                for (auto& m : mu) m = g.uniforms(C, 0.0f, 1.0f);
                // CPU
                std::vector<std::vector<float>> out(6, std::vector<float>(rows * C));
                std::vector<std::vector<float>> prev_cpu = prev;
                std::vector<float*> prev_ptr(B);
                for (int b = 0; b < B; b++) prev_ptr[b] = prev_cpu[b].data();
                TokenShiftArgs a{};
                a.u = u.data();
                a.prev = prev_ptr.data();
                for (int m = 0; m < 6; m++) a.mu[m] = mu[m].data(), a.out[m] = out[m].data();
                a.n_mix = n_mix, a.B = B, a.T = T, a.C = C;
                token_shift_cpu(a);
                // GPU
                DeviceArray<float> d_u(u);
                std::vector<std::unique_ptr<DeviceArray<float>>> d_prev, d_mu, d_out;
                std::vector<float*> h_prev_ptr(B);
                for (int b = 0; b < B; b++) {
                    d_prev.push_back(std::make_unique<DeviceArray<float>>(prev[b]));
                    h_prev_ptr[b] = d_prev.back()->get();
                }
                DeviceArray<float*> d_prev_ptr(h_prev_ptr);
                TokenShiftArgs d{};
                d.u = d_u.get();
                d.prev = d_prev_ptr.get();
                for (int m = 0; m < 6; m++) {
                    d_mu.push_back(std::make_unique<DeviceArray<float>>(mu[m]));
                    d_out.push_back(std::make_unique<DeviceArray<float>>(rows * C));
                    d.mu[m] = d_mu.back()->get();
                    d.out[m] = d_out.back()->get();
                }
                d.n_mix = n_mix, d.B = B, d.T = T, d.C = C;
                cuda::token_shift(d, nullptr);
                for (int m = 0; m < n_mix; m++)
                    EXPECT_LE(rel_err(d_out[m]->download(), out[m]), 1e-6) << label(C, T) << " mix " << m;
                for (int b = 0; b < B; b++) EXPECT_EQ(d_prev[b]->download(), prev_cpu[b]) << label(C, T);
            }
}

TEST_F(CudaOps, BiasAct) {
    SKIP_WITHOUT_GPU();
    Gen g(4);
    const Activation acts[] = {Activation::None, Activation::Tanh, Activation::Sigmoid, Activation::ReluSq,
                               Activation::Decay};
    for (int n : {32, 64, 96, 192, 768, 2560, 16384})
        for (int T : kTokens)
            for (Activation act : acts)
                for (bool with_bias : {true, false}) {
                    std::vector<float> y = g.normals(size_t(T) * n, 2.0f), b = g.normals(n, 0.5f);
                    std::vector<float> ref = y;
                    bias_act_cpu({ref.data(), with_bias ? b.data() : nullptr, act, T, n});
                    DeviceArray<float> d_y(y), d_b(b);
                    cuda::bias_act({d_y.get(), with_bias ? d_b.get() : nullptr, act, T, n}, nullptr);
                    std::vector<float> out = d_y.download();
                    EXPECT_LE(rel_err(out, ref), 2e-6) << "n=" << n << " T=" << T << " act " << int(act);
                    if (act == Activation::ReluSq) {  // zeros must stay exact zeros (the sparse FFN relies on it)
                        for (size_t i = 0; i < out.size(); i++) {
                            if (ref[i] == 0.0f) {
                                ASSERT_EQ(out[i], 0.0f) << i;
                            }
                        }
                    }
                }
}

TEST_F(CudaOps, KeyPrep) {
    SKIP_WITHOUT_GPU();
    Gen g(5);
    for (int C : kWidths)
        for (int T : kTokens)
            for (bool layer0 : {true, false}) {
                const size_t n = size_t(T) * C;
                std::vector<float> k = g.normals(n), v = g.normals(n), a = g.sigmoids(n), vf = g.normals(n),
                                   vg = g.sigmoids(n), k_k = g.uniforms(C, 0.3f, 1.2f), k_a = g.uniforms(C, 0.2f, 1.5f);
                std::vector<float> k_ref = k, v_ref = v, kk_ref(n);
                key_prep_cpu({k_ref.data(), v_ref.data(), kk_ref.data(), a.data(), k_k.data(), k_a.data(),
                              layer0 ? nullptr : vf.data(), layer0 ? nullptr : vg.data(), T, C});
                DeviceArray<float> d_k(k), d_v(v), d_kk(n), d_a(a), d_kkw(k_k), d_ka(k_a), d_vf(vf), d_vg(vg);
                cuda::key_prep({d_k.get(), d_v.get(), d_kk.get(), d_a.get(), d_kkw.get(), d_ka.get(),
                                layer0 ? nullptr : d_vf.get(), layer0 ? nullptr : d_vg.get(), T, C},
                               nullptr);
                EXPECT_LE(rel_err(d_kk.download(), kk_ref), 2e-6) << label(C, T);
                EXPECT_LE(rel_err(d_k.download(), k_ref), 1e-6) << label(C, T);
                EXPECT_LE(rel_err(d_v.download(), v_ref), 1e-6) << label(C, T);
            }
}

// A NaN in k poisons its head's κ̂ as on the CPU (std::max(NaN, eps) is NaN; fmaxf would give eps).
TEST_F(CudaOps, KeyPrepPropagatesNaNLikeTheCpu) {
    SKIP_WITHOUT_GPU();
    Gen g(51);
    const int T = 2, C = 768;
    const size_t n = size_t(T) * C;
    std::vector<float> k = g.normals(n), v = g.normals(n), a = g.sigmoids(n), k_k = g.uniforms(C, 0.3f, 1.2f),
                       k_a = g.uniforms(C, 0.2f, 1.5f);
    k[C + 70] = std::numeric_limits<float>::quiet_NaN();  // token 1, head 1
    std::vector<float> k_ref = k, v_ref = v, kk_ref(n);
    key_prep_cpu({k_ref.data(), v_ref.data(), kk_ref.data(), a.data(), k_k.data(), k_a.data(), nullptr, nullptr, T, C});
    DeviceArray<float> d_k(k), d_v(v), d_kk(n), d_a(a), d_kkw(k_k), d_ka(k_a);
    cuda::key_prep({d_k.get(), d_v.get(), d_kk.get(), d_a.get(), d_kkw.get(), d_ka.get(), nullptr, nullptr, T, C},
                   nullptr);
    const std::vector<float> kk = d_kk.download();
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(std::isnan(kk[i]), std::isnan(kk_ref[i])) << "element " << i;
    }
    EXPECT_TRUE(std::isnan(kk[C + 64]) && std::isnan(kk[C + 127]) && !std::isnan(kk[C + 128]));
}

TEST_F(CudaOps, TimeMixOutput) {
    SKIP_WITHOUT_GPU();
    Gen g(6);
    for (int C : kWidths)
        for (int T : kTokens) {
            const int H = C / kHeadSize;
            const size_t n = size_t(T) * C;
            std::vector<float> y = g.normals(n, 0.7f), r = g.normals(n), k = g.normals(n, 0.5f), v = g.normals(n),
                               gate = g.sigmoids(n), r_k = g.normals(C, 0.3f), lw = g.normals(C, 0.2f),
                               lb = g.normals(C, 0.1f);
            for (auto& x : lw) x += 1.0f;
            std::vector<float> ref(n);
            time_mix_output_cpu({y.data(), r.data(), k.data(), v.data(), gate.data(), r_k.data(), lw.data(), lb.data(),
                                 ref.data(), T, H});
            DeviceArray<float> d_y(y), d_r(r), d_k(k), d_v(v), d_g(gate), d_rk(r_k), d_lw(lw), d_lb(lb), d_o(n);
            TimeMixOutputArgs a{d_y.get(),  d_r.get(),  d_k.get(), d_v.get(), d_g.get(), d_rk.get(),
                                d_lw.get(), d_lb.get(), d_o.get(), T,         H};
            cuda::time_mix_output(a, nullptr);
            std::vector<float> out = d_o.download();
            EXPECT_LE(rel_err(out, ref), 1e-5) << label(C, T);
            a.out = d_y.get();  // in place, as the forward pass calls it
            cuda::time_mix_output(a, nullptr);
            EXPECT_EQ(d_y.download(), out) << "in place, " << label(C, T);
        }
}

// =================================================================================================== WKV

struct WkvInputs {
    int B, T, C, H;
    std::vector<float> r, w, k, v, kk, a;
    std::vector<std::vector<float>> state;  // B × [H, 64, 64]
};

void random_wkv_tokens(Gen& g, WkvInputs& in) {
    const size_t n = size_t(in.B) * in.T * in.C;
    in.r = g.normals(n, 0.5f);
    in.w = g.decays(n);
    in.k = g.normals(n, 0.5f);
    in.v = g.normals(n);
    in.kk = g.unit_heads(size_t(in.B) * in.T, in.C);
    in.a = g.sigmoids(n);
}

// States from 8 real recurrent steps (CPU) from zero, so they have the structure of a running model's.
WkvInputs make_wkv(Gen& g, int B, int T, int C) {
    WkvInputs in{B, 8, C, C / kHeadSize, {}, {}, {}, {}, {}, {}, {}};
    in.state.assign(B, std::vector<float>(size_t(in.H) * kHeadSize * kHeadSize, 0.0f));
    random_wkv_tokens(g, in);
    std::vector<float*> sp(B);
    for (int b = 0; b < B; b++) sp[b] = in.state[b].data();
    std::vector<float> y(in.r.size());
    wkv7_cpu({sp.data(), in.r.data(), in.w.data(), in.k.data(), in.v.data(), in.kk.data(), in.a.data(), y.data(), B,
              in.T, in.H});
    in.T = T;
    random_wkv_tokens(g, in);
    return in;
}

struct DeviceWkv {
    std::unique_ptr<DeviceArray<float>> r, w, k, v, kk, a, y;
    std::vector<std::unique_ptr<DeviceArray<float>>> state;
    std::unique_ptr<DeviceArray<float*>> state_ptr;
    Wkv7Args args{};

    explicit DeviceWkv(const WkvInputs& in) {
        r = std::make_unique<DeviceArray<float>>(in.r);
        w = std::make_unique<DeviceArray<float>>(in.w);
        k = std::make_unique<DeviceArray<float>>(in.k);
        v = std::make_unique<DeviceArray<float>>(in.v);
        kk = std::make_unique<DeviceArray<float>>(in.kk);
        a = std::make_unique<DeviceArray<float>>(in.a);
        y = std::make_unique<DeviceArray<float>>(in.r.size());
        std::vector<float*> p;
        for (const auto& s : in.state) {
            state.push_back(std::make_unique<DeviceArray<float>>(s));
            p.push_back(state.back()->get());
        }
        state_ptr = std::make_unique<DeviceArray<float*>>(p);
        args = {state_ptr->get(), r->get(), w->get(), k->get(), v->get(), kk->get(),
                a->get(),         y->get(), in.B,     in.T,     in.H};
    }
};

TEST_F(CudaOps, Wkv7MatchesCpu) {
    SKIP_WITHOUT_GPU();
    Gen g(7);
    for (int C : kWidths)
        for (int T : kTokens) {
            const int B = T >= 512 ? 1 : 2;  // B > 1 across several 16-token chunks too (T = 63, 64, 65)
            WkvInputs in = make_wkv(g, B, T, C);
            DeviceWkv d(in);
            cuda::wkv7(d.args, nullptr);
            std::vector<float> y = d.y->download();
            // CPU
            std::vector<std::vector<float>> st = in.state;
            std::vector<float*> sp(B);
            for (int b = 0; b < B; b++) sp[b] = st[b].data();
            std::vector<float> y_ref(in.r.size());
            wkv7_cpu({sp.data(), in.r.data(), in.w.data(), in.k.data(), in.v.data(), in.kk.data(), in.a.data(),
                      y_ref.data(), B, T, in.H});
            ASSERT_TRUE(all_finite(y)) << label(C, T);
            EXPECT_LE(rel_err(y, y_ref), 2e-4) << "y, " << label(C, T);
            for (int b = 0; b < B; b++)
                EXPECT_LE(rel_err(d.state[b]->download(), st[b]), 2e-4) << "state, " << label(C, T);
        }
}

// T one-token calls (the decode kernel) == one T-token call (the sequence kernel), bitwise.
TEST_F(CudaOps, Wkv7DecodeStepsEqualSequence) {
    SKIP_WITHOUT_GPU();
    Gen g(8);
    for (int C : {768, 2560})
        for (int T : {2, 17, 65}) {
            WkvInputs in = make_wkv(g, 1, T, C);
            DeviceWkv seq(in);
            cuda::wkv7(seq.args, nullptr);
            DeviceWkv dec(in);
            for (int t = 0; t < T; t++) {
                Wkv7Args a = dec.args;
                const size_t o = size_t(t) * C;
                a.r += o, a.w += o, a.k += o, a.v += o, a.kk += o, a.a += o, a.y += o;
                a.T = 1;
                cuda::wkv7(a, nullptr);
            }
            EXPECT_EQ(dec.y->download(), seq.y->download()) << label(C, T);
            EXPECT_EQ(dec.state[0]->download(), seq.state[0]->download()) << label(C, T);
        }
}

// Batched: B sequences in one call == each sequence alone, bitwise (the kernels do not mix sequences).
TEST_F(CudaOps, Wkv7BatchedEqualsSingle) {
    SKIP_WITHOUT_GPU();
    Gen g(9);
    for (int T : {1, 5, 65}) {
        const int B = 4, C = 1024;
        WkvInputs in = make_wkv(g, B, T, C);
        DeviceWkv all(in);
        cuda::wkv7(all.args, nullptr);
        std::vector<float> y_all = all.y->download();
        for (int b = 0; b < B; b++) {
            WkvInputs one = in;
            one.B = 1;
            const size_t off = size_t(b) * T * C, len = size_t(T) * C;
            for (auto* vec : {&one.r, &one.w, &one.k, &one.v, &one.kk, &one.a})
                *vec = std::vector<float>(vec->begin() + off, vec->begin() + off + len);
            one.state = {in.state[b]};
            DeviceWkv d(one);
            cuda::wkv7(d.args, nullptr);
            EXPECT_EQ(d.y->download(), std::vector<float>(y_all.begin() + off, y_all.begin() + off + len)) << "b=" << b;
            EXPECT_EQ(d.state[0]->download(), all.state[b]->download()) << "b=" << b;
        }
    }
}

// ================================================================================================= GEMV

uint16_t f32_to_f16_host(float f) {  // round to nearest even, finite inputs
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    if (x >= 0x47800000u) return uint16_t(sign | 0x7c00u);
    if (x < 0x38800000u) {
        float a;
        std::memcpy(&a, &x, 4);
        return uint16_t(sign | uint32_t(std::nearbyint(a * 16777216.0f)));
    }
    uint32_t r = x - (112u << 23);
    r += 0xfffu + ((r >> 13) & 1u);
    return uint16_t(sign | (r >> 13));
}

struct HostMatrix {
    WeightMatrix w;          // data -> host storage (for matmul_cpu)
    std::vector<float> f32;  // (o, i) at o·n_in + i, the exact values
    std::vector<float> s32;
    std::vector<uint16_t> s16;

    HostMatrix(Gen& g, DType dtype, WeightMatrix::Layout layout, int n_out, int n_in) {
        f32.resize(size_t(n_out) * n_in);
        if (dtype == DType::F32)
            s32.resize(f32.size());
        else
            s16.resize(f32.size());
        const float sd = 1.0f / std::sqrt(float(n_in));
        for (int o = 0; o < n_out; o++)
            for (int i = 0; i < n_in; i++) {
                float v = g.normal(sd);
                const size_t at = layout == WeightMatrix::Layout::OutIn ? size_t(o) * n_in + i : size_t(i) * n_out + o;
                if (dtype == DType::F32) {
                    s32[at] = v;
                } else {
                    const uint16_t h = dtype == DType::F16 ? f32_to_f16_host(v) : f32_to_bf16(v);
                    s16[at] = h;
                    v = dtype == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
                }
                f32[size_t(o) * n_in + i] = v;
            }
        w.data = dtype == DType::F32 ? static_cast<const void*>(s32.data()) : static_cast<const void*>(s16.data());
        w.dtype = dtype;
        w.n_out = n_out;
        w.n_in = n_in;
        w.layout = layout;
    }
    size_t bytes() const { return dtype_size(w.dtype) * f32.size(); }
};

const char* dt_name(DType t) {
    return t == DType::F32 ? "f32" : t == DType::F16 ? "f16" : "bf16";
}

// Runs cuda::gemv and matmul_cpu on the same weights and checks every element against the CPU's error bound.
void check_gemv(Gen& g, DType dtype, WeightMatrix::Layout layout, int n_out, int n_in, int T, bool accumulate,
                float zero_fraction, ThreadPool& pool, int x_offset = 0) {
    SCOPED_TRACE(std::string(dt_name(dtype)) + (layout == WeightMatrix::Layout::OutIn ? " OutIn" : " InOut") +
                 " n_out=" + std::to_string(n_out) + " n_in=" + std::to_string(n_in) + " T=" + std::to_string(T) +
                 (accumulate ? " acc" : "") + " zeros=" + std::to_string(zero_fraction) +
                 " x_offset=" + std::to_string(x_offset));
    HostMatrix m(g, dtype, layout, n_out, n_in);
    std::vector<float> x = g.normals(size_t(T) * n_in);
    for (auto& v : x)
        if (g.uniform(0.0f, 1.0f) < zero_fraction) v = 0.0f;
    std::vector<float> y0 = g.normals(size_t(T) * n_out);
    std::vector<float> ref = y0;
    matmul_cpu({&m.w, x.data(), ref.data(), T, accumulate}, pool);

    void* d_w = nullptr;
    ASSERT_EQ(cudaMalloc(&d_w, m.bytes()), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(d_w, m.w.data, m.bytes(), cudaMemcpyHostToDevice), cudaSuccess);
    WeightMatrix dw = m.w;
    dw.data = d_w;
    DeviceArray<float> d_xbuf(x.size() + size_t(x_offset)), d_y(y0);  // x_offset > 0: a misaligned x
    ASSERT_EQ(cudaMemcpy(d_xbuf.get() + x_offset, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice),
              cudaSuccess);
    const float* d_x = d_xbuf.get() + x_offset;
    const size_t ws_bytes = cuda::gemv_workspace_bytes(dw, T);
    DeviceArray<float> d_ws(ws_bytes / sizeof(float) + 1);
    const bool sparse_ok = layout == WeightMatrix::Layout::InOut;
    cuda::gemv({&dw, d_x, d_y.get(), T, accumulate}, false, d_ws.get(), ws_bytes, nullptr);
    std::vector<float> y = d_y.download();
    double worst = 0;
    for (int t = 0; t < T; t++)
        for (int o = 0; o < n_out; o++) {
            double mag = accumulate ? std::fabs(y0[size_t(t) * n_out + o]) : 0.0;
            for (int i = 0; i < n_in; i++)
                mag += std::fabs(double(m.f32[size_t(o) * n_in + i]) * x[size_t(t) * n_in + i]);
            const double err = std::fabs(double(y[size_t(t) * n_out + o]) - ref[size_t(t) * n_out + o]);
            worst = std::max(worst, mag > 0 ? err / mag : err);
            ASSERT_LE(err, 1e-5 * mag + 1e-30) << "t=" << t << " o=" << o << " gpu " << y[size_t(t) * n_out + o]
                                               << " cpu " << ref[size_t(t) * n_out + o];
        }
    if (sparse_ok) {  // the sparse path must give exactly the dense path's bits
        DeviceArray<float> d_y2(y0);
        cuda::gemv({&dw, d_x, d_y2.get(), T, accumulate}, true, d_ws.get(), ws_bytes, nullptr);
        EXPECT_EQ(d_y2.download(), y) << "sparse != dense";
    }
    cudaFree(d_w);
    ::testing::Test::RecordProperty("worst_err_over_bound", std::to_string(worst / 1e-5));
}

TEST_F(CudaOps, GemvOutInRealShapes) {
    SKIP_WITHOUT_GPU();
    Gen g(10);
    ThreadPool pool(2);
    for (int C : kWidths)
        for (DType dt : {DType::F16, DType::BF16})
            for (int T : {1, 2, 3, 5, 8}) {
                check_gemv(g, dt, WeightMatrix::Layout::OutIn, C, C, T, false, 0.0f, pool);  // r, k, v
                check_gemv(g, dt, WeightMatrix::Layout::OutIn, C, C, T, true, 0.0f, pool);   // o (+= x)
                if (T <= 2) {
                    check_gemv(g, dt, WeightMatrix::Layout::OutIn, 4 * C, C, T, false, 0.0f, pool);  // ffn_key
                    check_gemv(g, dt, WeightMatrix::Layout::OutIn, C, 4 * C, T, true, 0.5f, pool);   // ffn_value (HF)
                    check_gemv(g, dt, WeightMatrix::Layout::OutIn, 64, C, T, false, 0.0f, pool);     // HF LoRA down
                }
            }
    check_gemv(g, DType::F16, WeightMatrix::Layout::OutIn, 65536, 768, 1, false, 0.0f, pool);  // head
    check_gemv(g, DType::F32, WeightMatrix::Layout::OutIn, 1024, 1024, 2, true, 0.0f, pool);
    check_gemv(g, DType::F32, WeightMatrix::Layout::OutIn, 768, 768, 5, true, 0.0f, pool);    // block per row, T >= 4
    check_gemv(g, DType::F32, WeightMatrix::Layout::OutIn, 2048, 768, 8, false, 0.0f, pool);  // two rows per warp
}

TEST_F(CudaOps, GemvInOutLoraShapes) {
    SKIP_WITHOUT_GPU();
    Gen g(11);
    ThreadPool pool(2);
    for (int C : kWidths)
        for (int D : {32, 64, 96, 128, 160, 192})
            for (DType dt : {DType::F16, DType::BF16})
                for (int T : {1, 2, 5, 8}) {
                    check_gemv(g, dt, WeightMatrix::Layout::InOut, D, C, T, false, 0.0f, pool);  // w1: [C, D]
                    check_gemv(g, dt, WeightMatrix::Layout::InOut, C, D, T, false, 0.0f, pool);  // w2: [D, C]
                }
    check_gemv(g, DType::F32, WeightMatrix::Layout::InOut, 64, 2048, 3, true, 0.0f, pool);
}

// The sparse ReLU² FFN: ffn_value stored InOut [F, C], input at ~0%, ~50%, ~95% zeros; gemv compares the sparse
// result with the dense one bitwise, and both with matmul_cpu.
TEST_F(CudaOps, GemvSparseFfn) {
    SKIP_WITHOUT_GPU();
    Gen g(12);
    ThreadPool pool(2);
    for (int C : kWidths)
        for (float zeros : {0.0f, 0.5f, 0.95f})
            for (int T : {1, 2, 4})
                check_gemv(g, DType::F16, WeightMatrix::Layout::InOut, C, 4 * C, T, true, zeros, pool);
    check_gemv(g, DType::BF16, WeightMatrix::Layout::InOut, 2048, 8192, 1, false, 0.9f, pool);
    check_gemv(g, DType::F16, WeightMatrix::Layout::InOut, 768, 3072, 1, true, 1.0f, pool);  // all zeros
}

// Shapes the vector kernels refuse (row length not a multiple of 8) take the fallback, still right.
TEST_F(CudaOps, GemvOddShapes) {
    SKIP_WITHOUT_GPU();
    Gen g(13);
    ThreadPool pool(2);
    for (DType dt : {DType::F32, DType::F16, DType::BF16})
        for (int T : {1, 3, 8}) {
            check_gemv(g, dt, WeightMatrix::Layout::OutIn, 33, 100, T, false, 0.0f, pool);
            check_gemv(g, dt, WeightMatrix::Layout::OutIn, 1000, 36, T, true, 0.0f, pool);
            check_gemv(g, dt, WeightMatrix::Layout::InOut, 36, 1000, T, false, 0.0f, pool);
            check_gemv(g, dt, WeightMatrix::Layout::InOut, 1000, 7, T, true, 0.3f, pool);
            check_gemv(g, dt, WeightMatrix::Layout::InOut, 8, 5000, T, false, 0.0f, pool);
            check_gemv(g, dt, WeightMatrix::Layout::OutIn, 1024, 768, T, true, 0.0f, pool, 1);  // misaligned x
            check_gemv(g, dt, WeightMatrix::Layout::InOut, 768, 3072, T, true, 0.5f, pool, 3);
        }
}

TEST_F(CudaOps, CopyRowsAndConvert) {
    SKIP_WITHOUT_GPU();
    Gen g(14);
    const int B = 3, T = 5, C = 768;
    std::vector<float> x = g.normals(size_t(B) * T * C);
    DeviceArray<float> d_x(x), d_dst(size_t(B) * C);
    cuda::copy_rows(d_x.get(), T - 1, T, d_dst.get(), B, C, nullptr);
    std::vector<float> ref(size_t(B) * C);
    for (int b = 0; b < B; b++) std::copy_n(x.begin() + (size_t(b) * T + T - 1) * C, C, ref.begin() + size_t(b) * C);
    EXPECT_EQ(d_dst.download(), ref);

    const size_t n = 100003;
    std::vector<float> f = g.normals(n, 3.0f);
    std::vector<uint16_t> bf(n), hf(n);
    for (size_t i = 0; i < n; i++) bf[i] = f32_to_bf16(f[i]), hf[i] = f32_to_f16_host(f[i]);
    DeviceArray<float> d_f(f), d_back(n);
    DeviceArray<uint16_t> d_h(n), d_b(n), d_bh(n);
    cuda::convert(d_f.get(), DType::F32, d_h.get(), DType::F16, int64_t(n), nullptr);
    cuda::convert(d_f.get(), DType::F32, d_b.get(), DType::BF16, int64_t(n), nullptr);
    EXPECT_EQ(d_h.download(), hf);
    EXPECT_EQ(d_b.download(), bf);
    cuda::convert(d_b.get(), DType::BF16, d_bh.get(), DType::F16, int64_t(n), nullptr);  // the weight upload path
    std::vector<uint16_t> bh = d_bh.download();
    for (size_t i = 0; i < n; i++) ASSERT_EQ(bh[i], f32_to_f16_host(bf16_to_f32(bf[i]))) << i;
    cuda::convert(d_h.get(), DType::F16, d_back.get(), DType::F32, int64_t(n), nullptr);
    std::vector<float> back = d_back.download();
    for (size_t i = 0; i < n; i++) ASSERT_EQ(back[i], f16_to_f32(hf[i])) << i;
}

// ============================================================================================= sampling

// Logits like a trained model's: N(0, 3²) plus a few tokens lifted by 4..22 (a peaked distribution).
std::vector<float> peaked_logits(Gen& g, int V) {
    std::vector<float> l = g.normals(size_t(V), 3.0f);
    const int lifted = 1 + int(g.rng() % 5);
    for (int i = 0; i < lifted; i++) l[g.rng() % V] += g.uniform(4.0f, 22.0f);
    return l;
}

TEST_F(CudaOps, Argmax) {
    SKIP_WITHOUT_GPU();
    Gen g(15);
    for (int V : {65536, 50277, 1000}) {
        const int B = 5;
        std::vector<float> l;
        for (int b = 0; b < B; b++) {
            std::vector<float> row = peaked_logits(g, V);
            l.insert(l.end(), row.begin(), row.end());
        }
        // row 1: exact ties at the max (the lowest id wins); row 2: a NaN; row 3: all -inf but one; row 4: +inf
        const float mx = *std::max_element(l.begin() + V, l.begin() + 2 * V);
        l[size_t(V) + 7] = mx, l[size_t(V) + 3] = mx;
        l[size_t(2) * V + 11] = NAN;
        std::fill(l.begin() + 3 * size_t(V), l.begin() + 4 * size_t(V), -INFINITY);
        l[size_t(3) * V + V / 2] = -5.0f;
        l[size_t(4) * V + 1] = INFINITY;
        DeviceArray<float> d_l(l);
        DeviceArray<int32_t> d_out(B);
        cuda::argmax(d_l.get(), B, V, d_out.get(), nullptr);
        std::vector<int32_t> out = d_out.download();
        const int32_t r0 = int32_t(std::max_element(l.begin(), l.begin() + V) - l.begin());
        EXPECT_EQ(out[0], r0);
        EXPECT_EQ(out[1], 3);
        EXPECT_EQ(out[2], -1);
        EXPECT_EQ(out[3], V / 2);
        EXPECT_EQ(out[4], -1);
    }
}

// The device sampler picks the CPU sampler's token for the same uniform draw, over many draws and parameter sets.
TEST_F(CudaOps, SampleMatchesCpuSampler) {
    SKIP_WITHOUT_GPU();
    Gen g(16);
    struct Case {
        float T, top_p;
        int top_k;
        float min_p;
    };
    const Case cases[] = {{1.0f, 0.85f, 0, 0.0f}, {1.0f, 0.3f, 0, 0.0f},  {0.6f, 0.6f, 50, 0.0f},
                          {1.3f, 1.0f, 0, 0.0f},  {1.0f, 1.0f, 40, 0.0f}, {0.8f, 0.9f, 0, 0.05f},
                          {1.0f, 0.0f, 0, 0.0f},  {0.0f, 0.5f, 0, 0.0f}};
    const int V = 65536, B = 4, kSteps = 12;
    DeviceArray<float> d_l(size_t(B) * V);
    DeviceArray<double> d_u(B);
    DeviceArray<int32_t> d_out(B);
    DeviceArray<cuda::DeviceSamplerParams> d_p(B);
    const size_t ws = cuda::sample_workspace_bytes(B, V);
    DeviceArray<float> d_ws(ws / sizeof(float));
    int mismatches = 0, total = 0;
    for (const Case& c : cases) {
        SamplerParams sp;
        sp.temperature = c.T, sp.top_p = c.top_p, sp.top_k = c.top_k, sp.min_p = c.min_p;
        sp.presence_penalty = sp.frequency_penalty = 0.0f;
        sp.seed = 1234;
        TokenSampler cpu(sp, V);
        Rng rng(sp.seed);  // the same stream as the sampler's: one next_double() per select()
        std::vector<cuda::DeviceSamplerParams> p(B, {c.T, c.top_p, c.top_k, c.min_p});
        d_p.upload(p);
        for (int step = 0; step < kSteps; step++) {
            std::vector<float> l;
            std::vector<double> u(B);
            std::vector<int32_t> expect(B);
            for (int b = 0; b < B; b++) {
                std::vector<float> row = step % 2 ? peaked_logits(g, V) : g.normals(size_t(V), 3.0f);
                expect[b] = cpu.select(row.data());
                u[b] = rng.next_double();
                l.insert(l.end(), row.begin(), row.end());
            }
            d_l.upload(l);
            d_u.upload(u);
            cuda::sample(d_l.get(), B, V, d_p.get(), d_u.get(), d_out.get(), d_ws.get(), ws, nullptr);
            std::vector<int32_t> out = d_out.download();
            for (int b = 0; b < B; b++) {
                total++;
                if (out[b] != expect[b]) {
                    mismatches++;
                    ADD_FAILURE() << "T " << c.T << " top_p " << c.top_p << " top_k " << c.top_k << " min_p " << c.min_p
                                  << " step " << step << " row " << b << ": gpu " << out[b] << " cpu " << expect[b];
                }
            }
        }
    }
    std::printf("sampler: %d/%d draws differ\n", mismatches, total);
}

// Top-k with exact ties at the k-th place: lower ids win (integer-valued logits make many exact ties).
TEST_F(CudaOps, SampleTopKTies) {
    SKIP_WITHOUT_GPU();
    Gen g(17);
    const int V = 4096, B = 1;
    DeviceArray<float> d_l(static_cast<size_t>(V));
    DeviceArray<double> d_u(B);
    DeviceArray<int32_t> d_out(B);
    DeviceArray<cuda::DeviceSamplerParams> d_p(B);
    const size_t ws = cuda::sample_workspace_bytes(B, V);
    DeviceArray<float> d_ws(ws / sizeof(float));
    for (int k : {1, 3, 10, 100}) {
        SamplerParams sp;
        sp.temperature = 1.0f, sp.top_p = 1.0f, sp.top_k = k, sp.presence_penalty = sp.frequency_penalty = 0.0f;
        sp.seed = 99;
        TokenSampler cpu(sp, V);
        Rng rng(sp.seed);
        d_p.upload({{1.0f, 1.0f, k, 0.0f}});
        for (int step = 0; step < 20; step++) {
            std::vector<float> l(V);
            for (auto& x : l) x = float(int(g.rng() % 6));
            const int32_t expect = cpu.select(l.data());
            d_l.upload(l);
            d_u.upload({rng.next_double()});
            cuda::sample(d_l.get(), B, V, d_p.get(), d_u.get(), d_out.get(), d_ws.get(), ws, nullptr);
            EXPECT_EQ(d_out.download()[0], expect) << "k=" << k << " step " << step;
        }
    }
}

TEST_F(CudaOps, LogitEdits) {
    SKIP_WITHOUT_GPU();
    Gen g(18);
    const int V = 1000;
    std::vector<float> l = g.normals(size_t(2) * V);
    std::vector<cuda::LogitEdit> e = {{0, 5, -INFINITY, 0}, {0, 6, 1.5f, 1}, {0, 6, 0.2f, 2}, {1, 7, 0.35f, 2}};
    std::vector<float> ref = l;
    ref[5] = -INFINITY;
    ref[6] = ref[6] + 1.5f;
    ref[6] = ref[6] - 0.2f;
    ref[size_t(V) + 7] = ref[size_t(V) + 7] - 0.35f;
    DeviceArray<float> d_l(l);
    DeviceArray<cuda::LogitEdit> d_e(e);
    DeviceArray<int32_t> d_n(std::vector<int32_t>{int32_t(e.size())});
    cuda::apply_logit_edits(d_l.get(), V, d_e.get(), d_n.get(), 16, nullptr);
    EXPECT_EQ(d_l.download(), ref);
}

// The launchers inside a CUDA graph: a captured decode-like sequence (LN, token shift, GEMV OutIn, sparse InOut GEMV
// with its reduction, WKV decode, GroupNorm, sampling) replayed twice gives exactly the bits of plain launches.
TEST_F(CudaOps, GraphReplayEqualsPlainLaunches) {
    SKIP_WITHOUT_GPU();
    Gen g(19);
    const int C = 1024, F = 4 * C, V = 4096;
    cudaStream_t st;
    CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    HostMatrix key(g, DType::F16, WeightMatrix::Layout::OutIn, F, C),
        val(g, DType::F16, WeightMatrix::Layout::InOut, C, F), head(g, DType::F16, WeightMatrix::Layout::OutIn, V, C);
    void *d_key = nullptr, *d_val = nullptr, *d_head = nullptr;
    CUDA_OK(cudaMalloc(&d_key, key.bytes()));
    CUDA_OK(cudaMalloc(&d_val, val.bytes()));
    CUDA_OK(cudaMalloc(&d_head, head.bytes()));
    CUDA_OK(cudaMemcpy(d_key, key.w.data, key.bytes(), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(d_val, val.w.data, val.bytes(), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(d_head, head.w.data, head.bytes(), cudaMemcpyHostToDevice));
    WeightMatrix wk = key.w, wv = val.w, wh = head.w;
    wk.data = d_key, wv.data = d_val, wh.data = d_head;
    const std::vector<float> x0 = g.normals(C), prev0 = g.normals(C), lnw = g.uniforms(C, 0.8f, 1.2f),
                             lnb = g.normals(C, 0.1f), mu = g.uniforms(C, 0.0f, 1.0f);
    WkvInputs in = make_wkv(g, 1, 1, C);
    DeviceArray<float> d_x(x0), d_u(C), d_prev(prev0), d_lnw(lnw), d_lnb(lnb), d_mu(mu), d_xk(C), d_h(F), d_logits(V);
    DeviceArray<float*> d_prev_ptr(std::vector<float*>{d_prev.get()});
    DeviceArray<float> d_ws(std::max(cuda::gemv_workspace_bytes(wv, 1), cuda::gemv_workspace_bytes(wk, 1)) / 4 + 1);
    const size_t ws_bytes = d_ws.size() * 4;
    DeviceWkv wkv(in);
    DeviceArray<float> d_smp_ws(cuda::sample_workspace_bytes(1, V) / 4);
    DeviceArray<cuda::DeviceSamplerParams> d_p(std::vector<cuda::DeviceSamplerParams>{{0.9f, 0.7f, 0, 0.0f}});
    DeviceArray<double> d_uni(std::vector<double>{0.377});
    DeviceArray<int32_t> d_tok(1);
    auto step = [&] {
        cuda::layer_norm({d_x.get(), d_lnw.get(), d_lnb.get(), d_u.get(), 1, C}, st);
        TokenShiftArgs ts{};
        ts.u = d_u.get(), ts.prev = d_prev_ptr.get(), ts.mu[0] = d_mu.get(), ts.out[0] = d_xk.get();
        ts.n_mix = 1, ts.B = 1, ts.T = 1, ts.C = C;
        cuda::token_shift(ts, st);
        cuda::gemv({&wk, d_xk.get(), d_h.get(), 1, false}, false, d_ws.get(), ws_bytes, st);
        cuda::bias_act({d_h.get(), nullptr, Activation::ReluSq, 1, F}, st);
        cuda::gemv({&wv, d_h.get(), d_x.get(), 1, true}, true, d_ws.get(), ws_bytes, st);
        cuda::wkv7(wkv.args, st);
        cuda::gemv({&wh, d_x.get(), d_logits.get(), 1, false}, false, d_ws.get(), ws_bytes, st);
        cuda::sample(d_logits.get(), 1, V, d_p.get(), d_uni.get(), d_tok.get(), d_smp_ws.get(), d_smp_ws.size() * 4,
                     st);
    };
    auto reset = [&] {
        d_x.upload(x0);
        d_prev.upload(prev0);
        wkv.state[0]->upload(in.state[0]);
    };
    auto results = [&] {
        std::vector<float> r = d_x.download(), p = d_prev.download(), s = wkv.state[0]->download(),
                           l = d_logits.download();
        r.insert(r.end(), p.begin(), p.end());
        r.insert(r.end(), s.begin(), s.end());
        r.insert(r.end(), l.begin(), l.end());
        r.push_back(float(d_tok.download()[0]));
        return r;
    };
    // plain launches, two steps
    reset();
    step();
    step();
    CUDA_OK(cudaStreamSynchronize(st));
    const std::vector<float> plain = results();
    // one step captured, replayed twice
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    CUDA_OK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    step();
    CUDA_OK(cudaStreamEndCapture(st, &graph));
    CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
    reset();
    CUDA_OK(cudaGraphLaunch(exec, st));
    CUDA_OK(cudaGraphLaunch(exec, st));
    CUDA_OK(cudaStreamSynchronize(st));
    EXPECT_EQ(results(), plain);
    const float tok = plain.back();
    EXPECT_GE(tok, 0.0f);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaFree(d_key);
    cudaFree(d_val);
    cudaFree(d_head);
    cudaStreamDestroy(st);
}

// Without a device the launchers are still callable objects; this test documents that nothing ran on a GPU.
TEST(CudaOpsEnvironment, ReportsDevice) {
    const int n = cuda_device_count();
    if (n == 0) GTEST_SKIP() << "no CUDA device: none of the CUDA kernel tests ran";
    std::printf("CUDA device: %s\n", cuda_device_description().c_str());
}

}  // namespace
}  // namespace rwkv
