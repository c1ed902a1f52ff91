// matmul_fast_cpu against the reference matmul_cpu, for every ISA path this CPU can run (the others skip with a
// message), every weight dtype, both layouts, accumulate on and off, and odd shapes (n_in not a multiple of the
// vector width, n_out = 1, 7, 33, 1000; T = 1 .. 70 across the decode / prefill switches), plus long rows
// (n_in = 8200, T = 140) for which the prefill takes the tokens in several chunks.
//
// Tolerance: |fast - ref| ≤ 1e-5 · (Σ_k |w_ok| |x_tk| + |y0|) per element, y0 being the value accumulated into.
// Both versions sum the same exact products in fp32 in different orders (the reference: 8 partial sums of
// separately rounded products; the fast kernels: 8 or 16 lanes of fused multiply-adds, or one FMA chain per
// element for InOut), so each is within ~(terms per chain + log2 lanes) · 2^-24 · Σ|w||x| of the exact sum: the
// longest chain here is InOut's n_in = 768 (4.6e-5 · Σ|w||x| in the very worst case), ~100× less in practice
// as the rounding errors are not all of one sign; the largest observed ratio is printed by MatchesReference.
//
// Also checked bitwise: 1 vs 2 vs 3 threads, and each row of a T-token call (prefill GEMM) vs a T = 1 call (decode
// GEMV) on that row alone; see kernels/cpu/matmul_fast.h for why these are exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/half.h"
#include "common/thread_pool.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/matmul_fast.h"

namespace rwkv {
namespace {

// Round-to-nearest-even fp32 -> IEEE half, for finite inputs (the test weights are small normals).
uint16_t f32_to_f16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    if (x >= 0x47800000u) return uint16_t(sign | 0x7c00u);  // ≥ 65536: infinity
    if (x < 0x38800000u) {                                  // below 2^-14: a half subnormal (or zero)
        float a;
        std::memcpy(&a, &x, 4);
        return uint16_t(sign | uint32_t(std::nearbyint(a * 16777216.0f)));  // units of 2^-24; 0x400 is 2^-14
    }
    uint32_t r = x - (112u << 23);  // rebias the exponent from 127 to 15
    r += 0xfffu + ((r >> 13) & 1u);
    return uint16_t(sign | (r >> 13));
}

const char* dtype_str(DType t) {
    return t == DType::F32 ? "f32" : t == DType::F16 ? "f16" : "bf16";
}

// A weight matrix ~ N(0, 1/n_in) rounded to the dtype, with its exact fp32 values for the error bound.
struct TestMatrix {
    WeightMatrix w;
    std::vector<float> f32;        // element (o, i) at o * n_in + i, whatever the layout
    std::vector<float> storage32;  // the data as stored, for F32
    std::vector<uint16_t> storage16;

    TestMatrix(DType dtype, WeightMatrix::Layout layout, int n_out, int n_in, std::mt19937& rng) {
        std::normal_distribution<float> nd(0.0f, 1.0f / std::sqrt(float(std::max(n_in, 1))));
        f32.resize(size_t(n_out) * n_in);
        storage32.resize(dtype == DType::F32 ? f32.size() : 0);
        storage16.resize(dtype == DType::F32 ? 0 : f32.size());
        for (int o = 0; o < n_out; o++)
            for (int i = 0; i < n_in; i++) {
                float v = nd(rng);
                if (v == 0.0f) v = 1e-3f;  // never zeros
                const size_t at = layout == WeightMatrix::Layout::OutIn ? size_t(o) * n_in + i : size_t(i) * n_out + o;
                if (dtype == DType::F32) {
                    storage32[at] = v;
                } else {
                    uint16_t h = dtype == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
                    storage16[at] = h;
                    v = dtype == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
                }
                f32[size_t(o) * n_in + i] = v;
            }
        w.data = dtype == DType::F32 ? static_cast<const void*>(storage32.data()) : storage16.data();
        w.dtype = dtype;
        w.n_out = n_out;
        w.n_in = n_in;
        w.layout = layout;
    }
};

// Activations: N(0, 1) with about 1% outliers of magnitude 10..30, never zero.
std::vector<float> activations(size_t n, std::mt19937& rng) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> x(n);
    for (float& v : x) {
        v = nd(rng);
        if (u(rng) < 0.01f) v = (v < 0 ? -1.0f : 1.0f) * (10.0f + 20.0f * u(rng));
        if (v == 0.0f) v = 0.5f;
    }
    return x;
}

struct Case {
    int n_out, n_in;
};

// OutIn shapes exercise the row tiles (8/4/3 rows) and their leftovers, the k tails (n_in mod 8 and mod 16) and
// the panel boundary (32 rows); InOut shapes the column tiles (32/64 columns) and their partial last vector.
const Case kCases[] = {{1, 37},   {7, 64},     {33, 100}, {1000, 77}, {64, 768},
                       {768, 64}, {130, 1000}, {5, 3},    {40, 16},   {9, 59}};
// Both sides of each decode / prefill switch (AVX2: T ≤ 16 decode tiles, AVX-512: T ≤ 64).
const int kTokens[] = {1, 2, 3, 4, 5, 8, 17, 64, 70};

struct Param {
    CpuIsa isa;
    DType dtype;
    WeightMatrix::Layout layout;
};

std::string param_name(const testing::TestParamInfo<Param>& info) {
    return std::string(cpu_isa_name(info.param.isa)) + "_" + dtype_str(info.param.dtype) +
           (info.param.layout == WeightMatrix::Layout::OutIn ? "_OutIn" : "_InOut");
}

class MatmulFast : public testing::TestWithParam<Param> {
  protected:
    void SetUp() override {
        if (!cpu_isa_supported(GetParam().isa))
            GTEST_SKIP() << "this CPU (or this build) cannot run the " << cpu_isa_name(GetParam().isa) << " kernels";
    }
};

TEST_P(MatmulFast, MatchesReference) {
    const Param p = GetParam();
    std::mt19937 rng(1234);
    ThreadPool pool(2);
    double worst = 0;  // largest |fast - ref| / bound seen
    for (const Case& c : kCases) {
        TestMatrix m(p.dtype, p.layout, c.n_out, c.n_in, rng);
        for (int T : kTokens) {
            const std::vector<float> x = activations(size_t(T) * c.n_in, rng);
            const std::vector<float> y0 = activations(size_t(T) * c.n_out, rng);
            for (bool accumulate : {false, true}) {
                SCOPED_TRACE("n_out=" + std::to_string(c.n_out) + " n_in=" + std::to_string(c.n_in) +
                             " T=" + std::to_string(T) + " accumulate=" + std::to_string(accumulate));
                std::vector<float> ref = y0, got = y0;
                matmul_cpu({&m.w, x.data(), ref.data(), T, accumulate}, pool);
                matmul_fast_cpu({&m.w, x.data(), got.data(), T, accumulate}, pool, p.isa);
                int bad = 0;
                for (int t = 0; t < T; t++)
                    for (int o = 0; o < c.n_out; o++) {
                        double bound = accumulate ? std::fabs(y0[size_t(t) * c.n_out + o]) : 0.0;
                        for (int i = 0; i < c.n_in; i++)
                            bound += std::fabs(double(m.f32[size_t(o) * c.n_in + i]) * x[size_t(t) * c.n_in + i]);
                        const size_t at = size_t(t) * c.n_out + o;
                        const double err = std::fabs(double(got[at]) - ref[at]);
                        worst = std::max(worst, err / bound);
                        if (!(err <= 1e-5 * bound) && bad++ < 5)
                            ADD_FAILURE() << "t=" << t << " o=" << o << " fast=" << got[at] << " ref=" << ref[at]
                                          << " |err|=" << err << " bound=" << bound;
                    }
                EXPECT_EQ(bad, 0);
            }
        }
    }
    std::printf("largest |fast - ref| / (Σ|w||x| + |y0|): %.2e (tolerance 1e-5)\n", worst);
}

// Each element is computed by one thread in a fixed order: 1, 2 and 3 threads agree bitwise.
TEST_P(MatmulFast, ThreadCountDoesNotChangeResults) {
    const Param p = GetParam();
    std::mt19937 rng(99);
    ThreadPool pool1(1), pool2(2), pool3(3);
    const Case cases[] = {{1000, 100}, {333, 250}, {100, 700}, {2049, 40}};
    for (const Case& c : cases) {
        TestMatrix m(p.dtype, p.layout, c.n_out, c.n_in, rng);
        for (int T : {1, 3, 8, 17, 70}) {
            SCOPED_TRACE("n_out=" + std::to_string(c.n_out) + " n_in=" + std::to_string(c.n_in) +
                         " T=" + std::to_string(T));
            const std::vector<float> x = activations(size_t(T) * c.n_in, rng);
            const std::vector<float> y0 = activations(size_t(T) * c.n_out, rng);
            std::vector<float> y1 = y0, y2 = y0, y3 = y0;
            matmul_fast_cpu({&m.w, x.data(), y1.data(), T, true}, pool1, p.isa);
            matmul_fast_cpu({&m.w, x.data(), y2.data(), T, true}, pool2, p.isa);
            matmul_fast_cpu({&m.w, x.data(), y3.data(), T, true}, pool3, p.isa);
            EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * 4), 0);
            EXPECT_EQ(std::memcmp(y1.data(), y3.data(), y1.size() * 4), 0);
        }
    }
}

// Decode (T = 1) and prefill (T rows at once) give bitwise-identical rows.
TEST_P(MatmulFast, DecodeMatchesPrefillBitwise) {
    const Param p = GetParam();
    std::mt19937 rng(7);
    ThreadPool pool(2);
    const Case cases[] = {{200, 300}, {33, 1000}, {64, 768}};
    for (const Case& c : cases) {
        TestMatrix m(p.dtype, p.layout, c.n_out, c.n_in, rng);
        for (int T : {2, 5, 17, 64, 70}) {
            SCOPED_TRACE("n_out=" + std::to_string(c.n_out) + " n_in=" + std::to_string(c.n_in) +
                         " T=" + std::to_string(T));
            const std::vector<float> x = activations(size_t(T) * c.n_in, rng);
            std::vector<float> all(size_t(T) * c.n_out), one(c.n_out);
            matmul_fast_cpu({&m.w, x.data(), all.data(), T, false}, pool, p.isa);
            for (int t = 0; t < T; t++) {
                matmul_fast_cpu({&m.w, x.data() + size_t(t) * c.n_in, one.data(), 1, false}, pool, p.isa);
                EXPECT_EQ(std::memcmp(one.data(), all.data() + size_t(t) * c.n_out, one.size() * 4), 0) << "t=" << t;
            }
        }
    }
}

// Long rows × many tokens: the prefill GEMM takes the tokens in several chunks (packed X ≤ 4 MiB each).
TEST_P(MatmulFast, LongRowsInTokenChunks) {
    const Param p = GetParam();
    std::mt19937 rng(11);
    ThreadPool pool(2);
    const int n_out = 13, n_in = 8200, T = 140;
    TestMatrix m(p.dtype, p.layout, n_out, n_in, rng);
    const std::vector<float> x = activations(size_t(T) * n_in, rng);
    std::vector<float> ref(size_t(T) * n_out), got(size_t(T) * n_out), one(n_out);
    matmul_cpu({&m.w, x.data(), ref.data(), T, false}, pool);
    matmul_fast_cpu({&m.w, x.data(), got.data(), T, false}, pool, p.isa);
    for (int t = 0; t < T; t++)
        for (int o = 0; o < n_out; o++) {
            double bound = 0;
            for (int i = 0; i < n_in; i++)
                bound += std::fabs(double(m.f32[size_t(o) * n_in + i]) * x[size_t(t) * n_in + i]);
            const size_t at = size_t(t) * n_out + o;
            ASSERT_LE(std::fabs(double(got[at]) - ref[at]), 1e-5 * bound) << "t=" << t << " o=" << o;
        }
    for (int t : {0, 70, T - 1}) {
        matmul_fast_cpu({&m.w, x.data() + size_t(t) * n_in, one.data(), 1, false}, pool, p.isa);
        EXPECT_EQ(std::memcmp(one.data(), got.data() + size_t(t) * n_out, one.size() * 4), 0) << "t=" << t;
    }
}

// The sparse ReLU² FFN: one token whose input has ~0%, ~50% or ~95% exact zeros (relu(z)² of a biased z). The
// InOut decode path reads only the rows of the non-zeros; it must equal bitwise the same row inside a T = 3 call
// (the dense tiles on the weights in place) and a T = 9 call (tiles on a packed slab), and the reference within the
// tolerance. ffn.value's shapes: n_in = F = 4C; n_out = 2100 spans several wide column blocks, the last partial.
TEST_P(MatmulFast, SparseInputMatchesDense) {
    const Param p = GetParam();
    std::mt19937 rng(21);
    ThreadPool pool(2);
    const Case cases[] = {{768, 3072}, {100, 260}, {33, 1000}, {2100, 700}};
    for (const Case& c : cases) {
        TestMatrix m(p.dtype, p.layout, c.n_out, c.n_in, rng);
        for (double zeros : {0.0, 0.5, 0.95}) {
            SCOPED_TRACE("n_out=" + std::to_string(c.n_out) + " n_in=" + std::to_string(c.n_in) +
                         " zeros=" + std::to_string(zeros));
            std::normal_distribution<float> nd(0.0f, 1.0f);
            std::uniform_real_distribution<double> u(0.0, 1.0);
            std::vector<float> x(size_t(9) * c.n_in);
            for (float& v : x) {
                const float z = std::fabs(nd(rng)) + 1e-3f;
                v = u(rng) < zeros ? 0.0f : z * z;
            }
            const std::vector<float> y0 = activations(size_t(9) * c.n_out, rng);
            std::vector<float> dense = y0, packed = y0, one(y0.begin(), y0.begin() + c.n_out), ref = one;
            matmul_fast_cpu({&m.w, x.data(), dense.data(), 3, true}, pool, p.isa);
            matmul_fast_cpu({&m.w, x.data(), packed.data(), 9, true}, pool, p.isa);
            matmul_fast_cpu({&m.w, x.data(), one.data(), 1, true}, pool, p.isa);
            matmul_cpu({&m.w, x.data(), ref.data(), 1, true}, pool);
            EXPECT_EQ(std::memcmp(one.data(), dense.data(), one.size() * 4), 0);
            EXPECT_EQ(std::memcmp(one.data(), packed.data(), one.size() * 4), 0);
            for (int o = 0; o < c.n_out; o++) {
                double bound = std::fabs(y0[o]);
                for (int i = 0; i < c.n_in; i++) bound += std::fabs(double(m.f32[size_t(o) * c.n_in + i]) * x[i]);
                ASSERT_LE(std::fabs(double(one[o]) - ref[o]), 1e-5 * bound) << "o=" << o;
            }
        }
    }
}

std::vector<Param> all_params() {
    std::vector<Param> out;
    for (CpuIsa isa : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512})
        for (DType d : {DType::F32, DType::F16, DType::BF16})
            for (auto l : {WeightMatrix::Layout::OutIn, WeightMatrix::Layout::InOut}) out.push_back({isa, d, l});
    return out;
}

INSTANTIATE_TEST_SUITE_P(AllPaths, MatmulFast, testing::ValuesIn(all_params()), param_name);

// The default entry point runs the selected family and matches the explicit call bitwise.
TEST(MatmulFastDispatch, DefaultIsSelectedIsa) {
    EXPECT_TRUE(cpu_isa_supported(cpu_isa_selected()));
    EXPECT_LE(int(cpu_isa_selected()), int(cpu_isa_best()));
    std::mt19937 rng(5);
    ThreadPool pool(2);
    TestMatrix m(DType::BF16, WeightMatrix::Layout::OutIn, 300, 200, rng);
    const std::vector<float> x = activations(3 * 200, rng);
    std::vector<float> a(3 * 300), b(3 * 300);
    matmul_fast_cpu({&m.w, x.data(), a.data(), 3, false}, pool);
    matmul_fast_cpu({&m.w, x.data(), b.data(), 3, false}, pool, cpu_isa_selected());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
}

TEST(CpuFeatures, ConsistentWithTheIsaFamilies) {
    const CpuFeatures& f = cpu_features();
    std::printf(
        "cpu features: avx2=%d fma=%d f16c=%d avx512f=%d bw=%d vl=%d dq=%d bf16=%d amx_tile=%d amx_bf16=%d; "
        "best=%s selected=%s\n",
        f.avx2, f.fma, f.f16c, f.avx512f, f.avx512bw, f.avx512vl, f.avx512dq, f.avx512_bf16, f.amx_tile, f.amx_bf16,
        cpu_isa_name(cpu_isa_best()), cpu_isa_name(cpu_isa_selected()));
    EXPECT_TRUE(cpu_isa_supported(CpuIsa::Scalar));
    if (cpu_isa_supported(CpuIsa::Avx512)) {
        EXPECT_TRUE(cpu_isa_supported(CpuIsa::Avx2));
    }
    if (f.avx512f) {
        EXPECT_TRUE(f.avx2);
    }
}

}  // namespace
}  // namespace rwkv
