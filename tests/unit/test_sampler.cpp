// TokenSampler tests: exact cuts with ties, penalties and decay, bans and bias, RNG reproducibility, a
// frequency check, degenerate logits, and the fast selection path against a full-sort re-derivation
// of the same rules (docs/sampling.md) on thousands of realistic logit vectors of up to 65536 tokens.
#include "text/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <new>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"

// Counts heap allocations, to check that sampling allocates nothing after construction. (GCC flags
// malloc/free inside a replaced operator new/delete as mismatched once inlined; they are matched.) Not under
// ThreadSanitizer, whose static runtime defines these operators itself.
#if defined(__SANITIZE_THREAD__)
#define RWKV_TEST_NO_NEW_HOOK 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RWKV_TEST_NO_NEW_HOOK 1
#endif
#endif
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
static std::atomic<long> g_allocations{0};
#ifndef RWKV_TEST_NO_NEW_HOOK
void* operator new(size_t size) {
    ++g_allocations;
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, size_t) noexcept {
    std::free(p);
}
#endif

namespace rwkv {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kLn2 = 0.693147180559945309f;

SamplerParams plain(float temperature = 1.0f, float top_p = 1.0f, int top_k = 0, float min_p = 0.0f) {
    SamplerParams p;
    p.temperature = temperature;
    p.top_p = top_p;
    p.top_k = top_k;
    p.min_p = min_p;
    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.0f;
    return p;
}

// ---- the reference: the rules of docs/sampling.md with a full sort, written for clarity ----------------

struct Reference {
    std::vector<float> logits;
    float m = 0.0f;
    std::vector<float> w;        // softmax weights, max -> 1
    double z = 0.0;              // their sum
    std::vector<int32_t> order;  // all ids by (w desc, id asc)

    explicit Reference(const std::vector<float>& l) : logits(l) {
        const int n = static_cast<int>(l.size());
        m = *std::max_element(l.begin(), l.end());
        w.resize(n);
        z = sampler_detail::softmax_weights(l.data(), n, m, w.data());
        // Sort keys (~bits(w), id) ascending: w >= 0 orders like its bits, so this is (w desc, id asc).
        std::vector<uint64_t> keys(n);
        for (int i = 0; i < n; ++i) keys[i] = (uint64_t{~std::bit_cast<uint32_t>(w[i])} << 32) | uint32_t(i);
        std::sort(keys.begin(), keys.end());
        order.resize(n);
        for (int j = 0; j < n; ++j) order[j] = static_cast<int32_t>(keys[j] & 0xFFFFFFFFu);
    }

    int32_t select(const SamplerParams& p, double u) const;
};

int32_t Reference::select(const SamplerParams& p, double u) const {
    const int n = static_cast<int>(logits.size());
    if (p.temperature == 0.0f) return static_cast<int32_t>(std::find(logits.begin(), logits.end(), m) - logits.begin());
    int keep = n;  // survivors are order[0, keep)
    if (p.top_p < 1.0f) {
        const double target = static_cast<double>(p.top_p) * z;
        double acc = 0.0;
        for (int j = 0; j < n; ++j) {
            acc += w[order[j]];
            if (acc >= target) {
                const float cutoff = w[order[j]];
                keep = static_cast<int>(std::count_if(w.begin(), w.end(), [&](float x) { return x >= cutoff; }));
                break;
            }
        }
    }
    if (p.top_k > 0 && p.top_k < n) keep = std::min(keep, p.top_k);
    if (p.min_p > 0.0f)
        keep =
            std::min(keep, static_cast<int>(std::count_if(w.begin(), w.end(), [&](float x) { return x >= p.min_p; })));
    std::vector<uint8_t> survives(n, 0);
    for (int j = 0; j < keep; ++j) survives[order[j]] = 1;
    // Multinomial draw by blocks of 8 ids (docs/sampling.md): block sums as a fixed tree in double, a
    // running sum over blocks picks the block, then a running sum over its ids picks the token.
    std::vector<float> q(n + 8, 0.0f);
    for (int i = 0; i < n; ++i)
        if (survives[i]) q[i] = sampler_detail::tempered_weight(logits[i], m, w[i], p.temperature);
    const int n_blocks = (n + 7) / 8;
    std::vector<double> block(n_blocks);
    double total = 0.0;
    for (int b = 0; b < n_blocks; ++b) {
        const float* x = &q[8 * b];
        block[b] = ((double(x[0]) + x[1]) + (double(x[2]) + x[3])) + ((double(x[4]) + x[5]) + (double(x[6]) + x[7]));
        total += block[b];
    }
    const double target = u * total;
    double run = 0.0;
    for (int b = 0; b < n_blocks; ++b) {
        if (run + block[b] > target) {
            int32_t chosen = -1;
            for (int i = 8 * b; i < std::min(n, 8 * b + 8); ++i) {
                if (q[i] <= 0.0f) continue;
                run += q[i];
                chosen = i;
                if (run > target) break;
            }
            return chosen;
        }
        run += block[b];
    }
    for (int i = n - 1; i >= 0; --i)
        if (q[i] > 0.0f) return i;
    return -1;
}

// Realistic logits: N(0, 3^2) with a few tokens lifted well above the crowd, as a trained LM gives.
std::vector<float> realistic_logits(std::mt19937_64& gen, int n, int style) {
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::vector<float> l(n);
    for (float& x : l) x = normal(gen);
    std::uniform_int_distribution<int> pick(0, n - 1);
    std::uniform_real_distribution<float> lift(4.0f, 22.0f);
    const int n_lifted = static_cast<int>(gen() % 6);
    for (int k = 0; k < n_lifted; ++k) l[pick(gen)] += lift(gen);
    if (style == 1)  // quantised: many exact ties in logits and weights
        for (float& x : l) x = std::round(x * 2.0f) * 0.5f;
    if (style == 2)  // some banned tokens
        for (int k = 0; k < 50; ++k) l[pick(gen)] = -kInf;
    return l;
}

// The set of ids that `draws` samples can produce (with fixed seeds, so deterministic).
std::set<int32_t> reachable(const SamplerParams& params, const std::vector<float>& logits, int draws = 400) {
    TokenSampler s(params, static_cast<int>(logits.size()));
    std::set<int32_t> seen;
    std::vector<float> l(logits.size());
    for (int i = 0; i < draws; ++i) {
        std::copy(logits.begin(), logits.end(), l.begin());
        seen.insert(s.sample(l.data()));
    }
    return seen;
}

// Logits whose weights are exact powers of two (checked), so every cumulative sum below is exact.
// weights_log2[i] = -k gives w = 2^-k; a very negative logit gives w = 0.
std::vector<float> power_of_two_logits(const std::vector<int>& neg_log2, int n_vocab = 0) {
    std::vector<float> l(std::max<size_t>(neg_log2.size(), n_vocab), -1000.0f);
    for (size_t i = 0; i < neg_log2.size(); ++i) {
        l[i] = -static_cast<float>(neg_log2[i]) * kLn2;
        EXPECT_EQ(sampler_detail::exp_nonpositive(l[i]), std::ldexp(1.0f, -neg_log2[i])) << i;
    }
    return l;
}

// ---- RNG and exp ---------------------------------------------------------------------------------------

TEST(SamplerRng, KnownAnswers) {
    // Values from an independent Python transcription of splitmix64 seeding + xoshiro256**.
    Rng r0(0);
    EXPECT_EQ(r0.next_u64(), 0x99ec5f36cb75f2b4ull);
    EXPECT_EQ(r0.next_u64(), 0xbf6e1f784956452aull);
    EXPECT_EQ(r0.next_u64(), 0x1a5f849d4933e6e0ull);
    EXPECT_EQ(r0.next_u64(), 0x6aa594f1262d2d2cull);
    Rng r42(42);
    EXPECT_EQ(r42.next_u64(), 0x15780b2e0c2ec716ull);
    EXPECT_EQ(r42.next_u64(), 0x6104d9866d113a7eull);
    r42.reseed(42);
    EXPECT_EQ(r42.next_u64(), 0x15780b2e0c2ec716ull);
    Rng r(7);
    for (int i = 0; i < 100000; ++i) {
        const double u = r.next_double();
        ASSERT_GE(u, 0.0);
        ASSERT_LT(u, 1.0);
    }
}

TEST(SamplerExp, AccurateAndExactAtEnds) {
    EXPECT_EQ(sampler_detail::exp_nonpositive(0.0f), 1.0f);
    EXPECT_EQ(sampler_detail::exp_nonpositive(-0.0f), 1.0f);
    EXPECT_EQ(sampler_detail::exp_nonpositive(-kInf), 0.0f);
    EXPECT_EQ(sampler_detail::exp_nonpositive(-87.5f), 0.0f);
    EXPECT_EQ(sampler_detail::exp_nonpositive(-1e30f), 0.0f);
    double worst = 0.0;
    for (float d = -86.0f; d <= 0.0f; d += 0.000731f) {
        const double ref = std::exp(static_cast<double>(d));
        const double got = sampler_detail::exp_nonpositive(d);
        worst = std::max(worst, std::abs(got - ref) / ref);
    }
    EXPECT_LT(worst, 2.5e-7) << "relative error (2 ulp = 2.4e-7)";
    // Monotone non-increasing as d decreases.
    float prev = 1.0f;
    for (float d = 0.0f; d >= -87.0f; d -= 0.001953125f) {
        const float e = sampler_detail::exp_nonpositive(d);
        ASSERT_LE(e, prev) << d;
        prev = e;
    }
}

TEST(SamplerExp, VectorPathsMatchScalarBitwise) {
    // softmax_weights runs 4- or 8-lane vector code (AVX2 when the CPU has it); every weight must equal
    // the scalar exp_nonpositive bit for bit, and Z must follow the documented 8-lane summation.
    std::mt19937_64 gen(3);
    std::normal_distribution<float> normal(0.0f, 20.0f);
    for (int n : {1, 7, 8, 9, 17, 1000, 65536}) {
        std::vector<float> l(n);
        for (float& x : l) x = normal(gen);
        if (n > 10) l[3] = -kInf;
        const float m = *std::max_element(l.begin(), l.end());
        std::vector<float> w(n);
        const double z = sampler_detail::softmax_weights(l.data(), n, m, w.data());
        double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int i = 0; i < n; ++i) {
            const float e = sampler_detail::exp_nonpositive(l[i] - m);
            ASSERT_EQ(std::bit_cast<uint32_t>(w[i]), std::bit_cast<uint32_t>(e)) << n << " " << i << " " << l[i] - m;
            lane[i % 8] += e;
        }
        EXPECT_EQ(z, ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7])));
    }
}

// ---- parameters ----------------------------------------------------------------------------------------

void expect_invalid(const SamplerParams& p, const std::string& needle) {
    try {
        TokenSampler s(p, 10);
        ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), RWKV_STATUS_INVALID_ARGUMENT);
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

TEST(SamplerParams, Validation) {
    SamplerParams p;
    p.top_p = 1.5f;
    expect_invalid(p, "top_p must be in [0, 1], got 1.5");
    p = {};
    p.top_p = -0.1f;
    expect_invalid(p, "top_p");
    p = {};
    p.temperature = -1.0f;
    expect_invalid(p, "temperature must be 0 or a finite value >= 3e-39, got -1");
    p = {};
    p.temperature = std::numeric_limits<float>::quiet_NaN();
    expect_invalid(p, "temperature");
    p = {};
    p.temperature = 1e-40f;  // subnormal: 1/T is inf, so the top token's tempered weight would be 0·inf = NaN
    expect_invalid(p, "temperature");
    p = {};
    p.top_k = -3;
    expect_invalid(p, "top_k must be >= 0, got -3");
    p = {};
    p.penalty_decay = 1.25f;
    expect_invalid(p, "penalty_decay must be in [0, 1], got 1.25");
    p = {};
    p.min_p = 2.0f;
    expect_invalid(p, "min_p");
    p = {};
    p.presence_penalty = kInf;
    expect_invalid(p, "presence_penalty");

    TokenSampler s(SamplerParams{}, 10);
    EXPECT_THROW(s.set_banned_tokens({3, 10}), Error);
    EXPECT_THROW(s.set_banned_tokens({-1}), Error);
    EXPECT_THROW(s.set_logit_bias({{12, 1.0f}}), Error);
    EXPECT_THROW(s.set_logit_bias({{2, kInf}}), Error);
    EXPECT_THROW(s.accept(10, "x"), Error);
    EXPECT_THROW(TokenSampler(SamplerParams{}, 0), Error);
    SamplerParams bad;
    bad.top_p = 2.0f;
    EXPECT_THROW(s.set_params(bad), Error);
    EXPECT_EQ(s.params().top_p, 0.85f);  // unchanged after a failed set_params
    try {
        s.set_banned_tokens({3, 10});
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("banned token 10"), std::string::npos) << e.what();
    }
}

// ---- greedy and exact cuts -----------------------------------------------------------------------------

TEST(SamplerSelect, TemperatureZeroIsArgmaxLowestId) {
    std::vector<float> l = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f};
    for (float top_p : {0.0f, 0.5f, 1.0f}) {
        EXPECT_EQ(reachable(plain(0.0f, top_p), l, 50), std::set<int32_t>{1});
        EXPECT_EQ(reachable(plain(0.0f, top_p, 3, 0.5f), l, 50), std::set<int32_t>{1});
    }
    // Greedy still consumes one RNG step per call, so streams stay aligned when T changes.
    TokenSampler a(plain(1.0f), 5), b(plain(1.0f), 5);
    std::vector<float> flat(5, 0.0f);
    for (int i = 0; i < 3; ++i) {
        std::vector<float> x = flat, y = flat;
        a.sample(x.data());
        b.set_params(plain(0.0f));
        b.sample(y.data());
        b.set_params(plain(1.0f));
    }
    for (int i = 0; i < 20; ++i) {
        std::vector<float> x = flat, y = flat;
        EXPECT_EQ(a.sample(x.data()), b.sample(y.data()));
    }
}

TEST(SamplerSelect, TopPExactCutoffsAndTies) {
    // w = [0.25, 1, 0.5, 0.25], Z = 2: cumulative in sorted order 1, 1.5, 1.75, 2 (times 1/Z: .5 .75 .875 1)
    for (int n_vocab : {4, 65536}) {  // padded with w = 0 tokens: the histogram path on a big vocabulary
        const auto l = power_of_two_logits({2, 0, 1, 2}, n_vocab);
        EXPECT_EQ(reachable(plain(1.0f, 0.5f), l), (std::set<int32_t>{1})) << n_vocab;  // 0.5 reached at j=0
        EXPECT_EQ(reachable(plain(1.0f, 0.5001f), l), (std::set<int32_t>{1, 2})) << n_vocab;
        EXPECT_EQ(reachable(plain(1.0f, 0.75f), l), (std::set<int32_t>{1, 2})) << n_vocab;  // exactly hit
        // Past 0.75 the cutoff is 0.25, shared by ids 0 and 3: both survive.
        EXPECT_EQ(reachable(plain(1.0f, 0.76f), l), (std::set<int32_t>{0, 1, 2, 3})) << n_vocab;
        EXPECT_EQ(reachable(plain(1.0f, 0.0f), l), (std::set<int32_t>{1})) << n_vocab;
        EXPECT_EQ(reachable(plain(1.0f, 1.0f), l), (std::set<int32_t>{0, 1, 2, 3})) << n_vocab;
        // Tempering happens after the cut: a high T flattens but never revives cut tokens.
        EXPECT_EQ(reachable(plain(5.0f, 0.75f), l), (std::set<int32_t>{1, 2})) << n_vocab;
    }
    // top_p == 0 keeps every token tied at the maximum.
    const auto tied = power_of_two_logits({0, 1, 0, 3});
    EXPECT_EQ(reachable(plain(1.0f, 0.0f), tied), (std::set<int32_t>{0, 2}));
    EXPECT_EQ(reachable(plain(1.0f, 0.5f), tied), (std::set<int32_t>{0, 2}));  // 1 / 2.625 < 0.5 <= 2 / 2.625
}

TEST(SamplerSelect, TopKKeepsLowerIdsAmongTies) {
    for (int n_vocab : {4, 65536}) {
        const auto l = power_of_two_logits({2, 0, 1, 2}, n_vocab);  // order: 1, 2, 0, 3 (0 before 3: lower id)
        EXPECT_EQ(reachable(plain(1.0f, 1.0f, 1), l), (std::set<int32_t>{1})) << n_vocab;
        EXPECT_EQ(reachable(plain(1.0f, 1.0f, 2), l), (std::set<int32_t>{1, 2})) << n_vocab;
        EXPECT_EQ(reachable(plain(1.0f, 1.0f, 3), l), (std::set<int32_t>{0, 1, 2})) << n_vocab;
        EXPECT_EQ(reachable(plain(1.0f, 1.0f, 4), l), (std::set<int32_t>{0, 1, 2, 3})) << n_vocab;
        // top-p then top-k: the nucleus {0,1,2,3} limited to 3, the nucleus {1,2} unaffected by 3.
        EXPECT_EQ(reachable(plain(1.0f, 0.76f, 3), l), (std::set<int32_t>{0, 1, 2})) << n_vocab;
        EXPECT_EQ(reachable(plain(1.0f, 0.75f, 3), l), (std::set<int32_t>{1, 2})) << n_vocab;
    }
    // All-equal logits: top_k picks the k lowest ids.
    std::vector<float> flat(65536, 1.5f);
    EXPECT_EQ(reachable(plain(1.0f, 0.85f, 3), flat), (std::set<int32_t>{0, 1, 2}));
}

TEST(SamplerSelect, MinPRelativeToMaxBeforeTemperature) {
    for (int n_vocab : {4, 65536}) {
        const auto l = power_of_two_logits({2, 0, 1, 2}, n_vocab);
        EXPECT_EQ(reachable(plain(1.0f, 1.0f, 0, 0.5f), l), (std::set<int32_t>{1, 2})) << n_vocab;  // 0.5 kept
        EXPECT_EQ(reachable(plain(1.0f, 1.0f, 0, 0.26f), l), (std::set<int32_t>{1, 2})) << n_vocab;
        EXPECT_EQ(reachable(plain(1.0f, 1.0f, 0, 0.25f), l), (std::set<int32_t>{0, 1, 2, 3})) << n_vocab;
        EXPECT_EQ(reachable(plain(1.0f, 1.0f, 0, 1.0f), l), (std::set<int32_t>{1})) << n_vocab;
        // Applied to untempered weights: T = 0.5 would square 0.5 to 0.25, yet id 2 stays in.
        EXPECT_EQ(reachable(plain(0.5f, 1.0f, 0, 0.5f), l), (std::set<int32_t>{1, 2})) << n_vocab;
        EXPECT_EQ(reachable(plain(1.0f, 0.5001f, 2, 0.3f), l), (std::set<int32_t>{1, 2})) << n_vocab;
    }
}

// ---- frequencies ---------------------------------------------------------------------------------------

void expect_frequencies(const SamplerParams& params, const std::vector<float>& logits, const std::vector<double>& p) {
    constexpr int kDraws = 20000;
    TokenSampler s(params, static_cast<int>(logits.size()));
    std::vector<int> count(logits.size(), 0);
    for (int i = 0; i < kDraws; ++i) {
        std::vector<float> l = logits;
        ++count[s.sample(l.data())];
    }
    for (size_t i = 0; i < p.size(); ++i) {
        // Binomial count: mean N p, sd sqrt(N p (1 - p)); 5 sd gives a false alarm rate below 1e-6.
        const double mean = kDraws * p[i];
        const double sd = std::sqrt(kDraws * p[i] * (1.0 - p[i]));
        EXPECT_NEAR(count[i], mean, 5.0 * sd + 1e-9) << "token " << i << " T " << params.temperature;
    }
}

TEST(SamplerSelect, FrequenciesMatchDistribution) {
    const auto l = power_of_two_logits({2, 0, 1, 2});  // w = .25 1 .5 .25
    expect_frequencies(plain(1.0f, 1.0f), l, {0.125, 0.5, 0.25, 0.125});
    // T = 0.5: q = w^2 = 1/16, 1, 1/4, 1/16 -> / 1.375
    expect_frequencies(plain(0.5f, 1.0f), l, {0.0625 / 1.375, 1.0 / 1.375, 0.25 / 1.375, 0.0625 / 1.375});
    // T = 2: q = sqrt(w) = .5, 1, .7071, .5
    const double s = 0.5 + 1.0 + std::sqrt(0.5) + 0.5;
    expect_frequencies(plain(2.0f, 1.0f), l, {0.5 / s, 1.0 / s, std::sqrt(0.5) / s, 0.5 / s});
    // Nucleus {1, 2} renormalised: 2/3, 1/3.
    expect_frequencies(plain(1.0f, 0.75f), l, {0.0, 2.0 / 3.0, 1.0 / 3.0, 0.0});
}

TEST(SamplerSelect, AllEqualLogitsAreUniform) {
    constexpr int kV = 8192, kDraws = 20000, kGroups = 16;
    std::vector<float> flat(kV, -2.0f);
    TokenSampler s(plain(1.0f, 0.85f), kV);  // all tied at the cutoff: all survive
    std::vector<int> groups(kGroups, 0);
    for (int i = 0; i < kDraws; ++i) {
        std::vector<float> l = flat;
        const int32_t t = s.sample(l.data());
        ASSERT_GE(t, 0);
        ASSERT_LT(t, kV);
        ++groups[t / (kV / kGroups)];
    }
    const double mean = double(kDraws) / kGroups, sd = std::sqrt(kDraws * (1.0 / kGroups) * (1.0 - 1.0 / kGroups));
    for (int g = 0; g < kGroups; ++g) EXPECT_NEAR(groups[g], mean, 5.0 * sd) << g;
    // The full vocabulary: every token tied, so the top-p cut keeps all of them.
    TokenSampler big(plain(1.0f, 0.5f), 65536);
    std::vector<float> l(65536);
    std::set<int32_t> seen;
    for (int i = 0; i < 200; ++i) {
        std::fill(l.begin(), l.end(), 3.0f);
        seen.insert(big.sample(l.data()));
    }
    EXPECT_GT(seen.size(), 190u);
    EXPECT_GT(*seen.rbegin(), 60000);
}

// ---- degenerate logits ---------------------------------------------------------------------------------

TEST(SamplerSelect, InfiniteAndInvalidLogits) {
    std::vector<float> l(1000, -kInf);
    l[537] = -3.0f;
    for (const SamplerParams& p : {plain(1.0f, 0.85f), plain(1.0f, 1.0f), plain(0.7f, 0.3f, 5), plain(0.0f)})
        EXPECT_EQ(reachable(p, l, 100), std::set<int32_t>{537});
    l[12] = -3.0f;
    EXPECT_EQ(reachable(plain(1.3f, 1.0f), l, 200), (std::set<int32_t>{12, 537}));

    TokenSampler s(plain(), 1000);
    std::vector<float> all_inf(1000, -kInf);
    EXPECT_THROW(s.sample(all_inf.data()), Error);
    std::vector<float> nan(1000, 0.0f);
    nan[77] = std::numeric_limits<float>::quiet_NaN();
    try {
        s.sample(nan.data());
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("logits[77]"), std::string::npos) << e.what();
    }
    std::vector<float> pinf(1000, 0.0f);
    pinf[5] = kInf;
    EXPECT_THROW(s.sample(pinf.data()), Error);
    // A huge spread is no problem: everything below max - 87 has weight exactly 0.
    std::vector<float> wide = {-1e30f, 1e30f, 0.0f, 1e30f - 1e24f};
    EXPECT_EQ(reachable(plain(1.0f, 1.0f), wide, 200), std::set<int32_t>{1});
}

// ---- penalties, bans, bias -----------------------------------------------------------------------------

TEST(SamplerPenalties, PresenceFrequencyDecayAndWhitespaceRule) {
    SamplerParams p = plain();
    p.presence_penalty = 0.4f;
    p.frequency_penalty = 0.3f;
    p.penalty_decay = 0.996f;
    TokenSampler s(p, 16);
    // Generated: 5 "a", 7 " ", 5 "a", 9 "12", 3 "1a", 7 " ", 4 "" (empty decode counts as a normal token)
    const std::vector<std::pair<int32_t, std::string>> gen = {{5, "a"},  {7, " "}, {5, "a"}, {9, "12"},
                                                              {3, "1a"}, {7, " "}, {4, ""}};
    std::vector<double> occ(16, 0.0);
    std::vector<bool> in(16, false);
    for (const auto& [tok, text] : gen) {
        for (int i = 0; i < 16; ++i) occ[i] *= static_cast<double>(p.penalty_decay);
        const bool presence_only = !text.empty() && std::string(" \t0123456789").find(text) != std::string::npos;
        occ[tok] += presence_only ? 0.0 : 1.0;
        in[tok] = true;
        s.accept(tok, text);
    }
    const double d = 0.996f;
    EXPECT_DOUBLE_EQ(s.occurrence(5), d * d * d * d * d * d + d * d * d * d);  // accepted 1st and 3rd of 7
    EXPECT_EQ(s.occurrence(7), 0.0);                                           // " ": presence only
    EXPECT_EQ(s.occurrence(9), 0.0);                                           // "12": presence only
    EXPECT_DOUBLE_EQ(s.occurrence(3), d * d);                                  // "1a" is not a substring
    EXPECT_EQ(s.occurrence(4), 1.0);
    for (int i = 0; i < 16; ++i) EXPECT_DOUBLE_EQ(s.occurrence(i), occ[i]) << i;

    std::vector<float> logits(16);
    for (int i = 0; i < 16; ++i) logits[i] = 0.25f * i - 1.0f;
    std::vector<float> expected = logits;
    for (int i = 0; i < 16; ++i)
        if (in[i]) expected[i] -= static_cast<float>(double(p.presence_penalty) + occ[i] * double(p.frequency_penalty));
    s.sample(logits.data());
    for (int i = 0; i < 16; ++i) EXPECT_EQ(logits[i], expected[i]) << i;
    EXPECT_NEAR(logits[7], 0.25f * 7 - 1.0f - 0.4f, 1e-6);  // whitespace: exactly the presence penalty
    EXPECT_NEAR(logits[4], 0.25f * 4 - 1.0f - 0.4f - 0.3f, 1e-6);

    s.reset();
    for (int i = 0; i < 16; ++i) EXPECT_EQ(s.occurrence(i), 0.0);
    std::vector<float> fresh(16, 0.5f);
    s.sample(fresh.data());
    for (float x : fresh) EXPECT_EQ(x, 0.5f);
}

TEST(SamplerPenalties, PenaltiesSteerGreedyChoice) {
    SamplerParams p = plain(0.0f);
    p.presence_penalty = 1.0f;
    p.frequency_penalty = 1.0f;
    TokenSampler s(p, 3);
    std::vector<int32_t> got;
    for (int i = 0; i < 6; ++i) {
        std::vector<float> l = {1.0f, 0.9f, 0.8f};
        const int32_t t = s.sample(l.data());
        got.push_back(t);
        s.accept(t, "x");
    }
    EXPECT_EQ(got, (std::vector<int32_t>{0, 1, 2, 0, 1, 2}));
}

TEST(SamplerPenalties, BansAndBias) {
    TokenSampler s(plain(0.0f), 6);
    s.set_banned_tokens({2, 0});
    s.set_logit_bias({{4, 1.5f}, {4, 0.25f}, {2, 100.0f}, {1, -0.5f}});
    std::vector<float> l = {9.0f, 1.0f, 9.0f, 1.0f, 0.5f, 2.0f};
    EXPECT_EQ(s.sample(l.data()), 4);  // 0.5 + 1.75 beats 2.0; bans win over any bias
    EXPECT_EQ(l[0], -kInf);
    EXPECT_EQ(l[2], -kInf);
    EXPECT_EQ(l[4], 2.25f);
    EXPECT_EQ(l[1], 0.5f);
    EXPECT_EQ(l[5], 2.0f);
    // Banned ids are never drawn, whatever the temperature.
    s.set_params(plain(3.0f, 1.0f));
    for (int i = 0; i < 500; ++i) {
        std::vector<float> x = {9.0f, 1.0f, 9.0f, 1.0f, 0.5f, 2.0f};
        const int32_t t = s.sample(x.data());
        ASSERT_NE(t, 0);
        ASSERT_NE(t, 2);
    }
    s.set_banned_tokens({});
    s.set_logit_bias({});
    std::vector<float> x = {9.0f, 1.0f, 9.0f, 1.0f, 0.5f, 2.0f};
    s.set_params(plain(0.0f));
    EXPECT_EQ(s.sample(x.data()), 0);
}

// ---- seeds ---------------------------------------------------------------------------------------------

std::vector<int32_t> run(TokenSampler& s, int n) {
    std::vector<int32_t> out;
    std::vector<float> base(1000);
    for (int i = 0; i < 1000; ++i) base[i] = std::sin(0.37f * i);  // a broad distribution
    for (int i = 0; i < n; ++i) {
        std::vector<float> l = base;
        out.push_back(s.sample(l.data()));
    }
    return out;
}

TEST(SamplerSeed, Reproducible) {
    SamplerParams p = plain(1.0f, 0.9f);
    p.seed = 1234;
    TokenSampler a(p, 1000), b(p, 1000);
    const auto sa = run(a, 100);
    EXPECT_EQ(sa, run(b, 100));
    p.seed = 1235;
    TokenSampler c(p, 1000);
    const auto sc = run(c, 100);
    EXPECT_NE(sa, sc);
    int same = 0;
    for (int i = 0; i < 100; ++i) same += sa[i] == sc[i];
    EXPECT_LT(same, 20);
    // reseed restarts the stream; set_params with the same seed does not.
    a.reseed(1234);
    EXPECT_EQ(run(a, 100), sa);
    a.reseed(1234);
    const auto first = run(a, 50);
    p.seed = 1234;
    p.top_p = 0.9f;
    a.set_params(p);
    const auto second = run(a, 50);
    EXPECT_EQ(first, std::vector<int32_t>(sa.begin(), sa.begin() + 50));
    EXPECT_EQ(second, std::vector<int32_t>(sa.begin() + 50, sa.end()));
    p.seed = 1235;
    a.set_params(p);
    EXPECT_EQ(run(a, 100), sc);
    EXPECT_EQ(a.params().seed, 1235u);
}

// ---- fast path against the full-sort reference ---------------------------------------------------------

std::vector<SamplerParams> comparison_params() {
    return {plain(1.0f, 0.85f),
            plain(1.0f, 0.3f),
            plain(0.7f, 0.6f, 50),
            plain(1.5f, 1.0f),
            plain(1.0f, 0.95f, 0, 0.05f),
            plain(1.0f, 0.0f),
            plain(1.0f, 1.0f, 40),
            plain(0.3f, 0.99f),
            plain(1.0f, 0.2f, 0, 0.2f),
            plain(2.0f, 0.999f, 1000),
            plain(0.0f)};
}

void compare_with_reference(int n_vocab, int n_vectors, uint64_t seed) {
    std::mt19937_64 gen(seed);
    auto params = comparison_params();
    for (SamplerParams& p : params) p.seed = seed;  // set_params would reseed on a different seed
    TokenSampler s(params[0], n_vocab);
    Rng rng(seed);
    int mismatches = 0;
    for (int v = 0; v < n_vectors; ++v) {
        const auto logits = realistic_logits(gen, n_vocab, v % 3);
        const Reference reference(logits);
        for (size_t k = 0; k < params.size(); ++k) {
            s.set_params(params[k]);
            const int32_t fast = s.select(logits.data());
            const int32_t ref = reference.select(params[k], rng.next_double());
            if (fast != ref && ++mismatches <= 10)
                ADD_FAILURE() << "vector " << v << " params " << k << ": fast " << fast << " reference " << ref;
        }
    }
    EXPECT_EQ(mismatches, 0);
}

TEST(SamplerSelect, FastPathMatchesFullSortSmallVocab) {
    compare_with_reference(64, 5000, 11);
    compare_with_reference(4096, 2000, 13);
}

// RWKV_SAMPLER_STRESS=N runs N vectors instead of 300 (each costs a 65536-entry sort).
TEST(SamplerSelect, FastPathMatchesFullSortRealVocab) {
    const char* env = std::getenv("RWKV_SAMPLER_STRESS");
    compare_with_reference(65536, env ? std::atoi(env) : 300, 12);
}

// ---- performance ---------------------------------------------------------------------------------------

TEST(SamplerPerformance, NoAllocationAfterConstruction) {
#ifdef RWKV_TEST_NO_NEW_HOOK
    GTEST_SKIP() << "operator new is the sanitizer's in this build: allocations are not counted";
#endif
    constexpr int kV = 65536;
    std::mt19937_64 gen(9);
    std::vector<std::vector<float>> sets;
    for (int style = 0; style < 3; ++style) sets.push_back(realistic_logits(gen, kV, style));
    sets.push_back(std::vector<float>(kV, 0.0f));
    std::vector<float> l(kV);
    for (const SamplerParams& p : comparison_params()) {
        TokenSampler s(p, kV);
        s.set_banned_tokens({0, 5});
        s.set_logit_bias({{7, 1.0f}});
        const long before = g_allocations.load();
        for (int round = 0; round < 3; ++round) {
            for (const auto& v : sets) {
                std::copy(v.begin(), v.end(), l.begin());
                const int32_t t = s.sample(l.data());
                s.accept(t, "x");
            }
            for (int t = 0; t < 3000; ++t) s.accept(t * 7 % kV, " ");
            s.reset();
        }
        EXPECT_EQ(g_allocations.load() - before, 0) << "temperature " << p.temperature << " top_p " << p.top_p;
    }
}

// CPU time of this thread: on a shared machine, time spent descheduled is not counted.
double thread_cpu_us() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

// Not a check: prints the time per sample() on 65536 logits (the numbers quoted in docs/sampling.md).
TEST(SamplerTiming, PerCall) {
    constexpr int kV = 65536, kVectors = 64, kReps = 10;
    std::mt19937_64 gen(5);
    std::vector<std::vector<float>> peaked, flat;
    for (int i = 0; i < kVectors; ++i) {
        peaked.push_back(realistic_logits(gen, kV, 0));
        std::vector<float> f(kV);
        std::normal_distribution<float> normal(0.0f, 3.0f);
        for (float& x : f) x = normal(gen);
        flat.push_back(f);
    }
    for (const SamplerParams& p :
         {plain(1.0f, 0.3f), plain(1.0f, 0.85f), plain(0.0f), plain(1.0f, 1.0f), plain(0.6f, 0.6f, 50)}) {
        for (int which = 0; which < 2; ++which) {
            const auto& set = which == 0 ? peaked : flat;
            SamplerParams q = p;
            q.presence_penalty = 0.2f;
            q.frequency_penalty = 0.2f;
            TokenSampler s(q, kV);
            for (int t = 0; t < 64; ++t) s.accept(t * 97, "x");
            std::vector<float> l(kV);
            double total = 0.0;
            for (int r = 0; r < kReps; ++r)
                for (const auto& v : set) {
                    std::copy(v.begin(), v.end(), l.begin());
                    const double t0 = thread_cpu_us();
                    s.sample(l.data());
                    total += thread_cpu_us() - t0;
                }
            std::printf("sample() V=65536 %-6s T=%.1f top_p=%.2f top_k=%d: %8.1f us\n", which == 0 ? "peaked" : "flat",
                        p.temperature, p.top_p, p.top_k, total / (kReps * kVectors));
        }
    }
}

}  // namespace
}  // namespace rwkv
