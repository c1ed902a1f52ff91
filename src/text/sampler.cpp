// TokenSampler: see sampler.h for the API and docs/sampling.md for the exact rules implemented here.
//
// The reference (ChatRWKV utils.py sample_logits) sorts all V probabilities, cumulative-sums them and
// cuts. Sorting V = 65536 floats per token costs milliseconds; this file gets the bit-identical answer
// from a short prefix of that order:
//   1. max pass (vector) -> weights w = exp(l - max) in [0, 1] and Z = sum w (vector; AVX2 when present);
//   2. candidates = ids with w >= a lower bound on the top-p cutoff, (1 - top_p) Z / V (and >= min_p),
//      found with a vector compare that skips blocks of 16;
//   3. when there are many, a histogram of the candidates by the top bits of w tightens the bound to
//      the highest bin whose cumulative lower-bound mass already reaches top_p Z (or holds top_k);
//   4. the survivors of that threshold are ordered by (w desc, id asc) (radix or std::sort) and the
//      cumulative sum runs over them: it is the same prefix of the same order as the full sort's, so
//      the same sums, the same cutoff and the same survivors;
//   5. the multinomial draw runs over the survivors in id order (docs/sampling.md, "Draw").
// The bounds carry a safety margin; were one ever too tight, step 4 would not reach top_p Z and the
// code falls back to all tokens >= min_p (tested by building with -DRWKV_SAMPLER_MASS_MARGIN=-0.3).
#include "text/sampler.h"

#include "common/exp_poly.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/error.h"

namespace rwkv {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Weights lie in [0, 1]; bits >> 19 keeps the exponent and 4 mantissa bits: 16 bins per octave, so a
// bin's smallest value is at least 1/1.0625 of its largest. 1.0f = 0x3F800000 lands in bin 2032.
constexpr int kHistogramShift = 19;
constexpr int kHistogramBins = 2048;
constexpr int kHistogramMinCandidates = 128;  // fewer: just sort them
constexpr int kRadixMinCandidates = 512;      // more: radix sort instead of std::sort

// The bin bound is a lower bound on the true mass; the sorted cumulative sum differs from it only by
// double rounding (~1e-12 relative for V = 65536), so this margin makes the fallback unreachable in
// practice while keeping it correct when it is reached.
#ifdef RWKV_SAMPLER_MASS_MARGIN  // a negative margin forces the fallback (a developer check)
constexpr double kMassMargin = RWKV_SAMPLER_MASS_MARGIN;
#else
constexpr double kMassMargin = 1e-6;
#endif

std::string fmt(double v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.9g", v);
    return buf;
}

// Cephes expf (common/exp_poly.h), restricted to d <= 0, once for float and once for an 8-lane vector: the
// same IEEE operations lane by lane.
constexpr float kExpFloor = -87.0f;  // below: weight 0 (e^-87 = 1.6e-38, near FLT_MIN)

inline float exp_np(float d) {
    const float x = d < kExpFloor ? kExpFloor : d;  // -inf too; the result is replaced by 0 below
    float r, kf, p;
    exp_poly::reduce(x, &r, &kf);
    exp_poly::poly(r, &p);
    const int k = static_cast<int>(kf);
    const float scale = std::bit_cast<float>(static_cast<uint32_t>(k + 127) << 23);  // 2^k, k >= -126
    const float y = p * scale;
    return d < kExpFloor ? 0.0f : y;
}

#if defined(__GNUC__) && !defined(RWKV_SAMPLER_NO_SIMD)
// 4 float lanes: one SSE2 / NEON register, the baseline of every 64-bit target.
#define RWKV_SAMPLER_SIMD 1
typedef float V4f __attribute__((vector_size(16)));
typedef int32_t V4i __attribute__((vector_size(16)));

inline V4f load4(const float* p) {
    V4f v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}
inline void store4(float* p, V4f v) {
    std::memcpy(p, &v, sizeof(v));
}
inline V4f splat4(float x) {
    return V4f{x, x, x, x};
}
inline V4f select4(V4i mask, V4f a, V4f b) {
    return (V4f)((mask & (V4i)a) | (~mask & (V4i)b));
}
inline bool any4(V4i mask) {
#if defined(__SSE2__)
    return _mm_movemask_ps((__m128)mask) != 0;
#else
    return (mask[0] | mask[1] | mask[2] | mask[3]) != 0;
#endif
}

inline V4f exp_np4(V4f d) {
    const V4i below = d < kExpFloor;
    const V4f x = select4(below, splat4(kExpFloor), d);
    V4f r, kf, p;
    exp_poly::reduce(x, &r, &kf);
    exp_poly::poly(r, &p);
    const V4i k = __builtin_convertvector(kf, V4i);
    const V4f scale = (V4f)((k + 127) << 23);
    const V4f y = p * scale;
    return (V4f)(~below & (V4i)y);
}
#endif

inline float tempered(float logit, float max_logit, float w, float temperature, float inv_t) {
    if (temperature == 1.0f) return w;
    const float d = logit - max_logit;
    const float dt = d * inv_t;
    return w > 0.0f ? exp_np(dt) : 0.0f;
}

// A lower bound on the top-p cutoff weight: the tokens from the cutoff on hold more than (1 - top_p) Z
// of mass (else the cumulative sum would have reached top_p Z earlier), in at most n tokens each <= the
// cutoff, so cutoff >= (1 - top_p) Z / n. Shaded by kMassMargin for rounding; 0 without a top-p cut.
inline float min_cutoff_bound(float top_p, double z, int n) {
    if (!(top_p < 1.0f)) return 0.0f;
    const double bound = ((1.0 - top_p) * (1.0 - kMassMargin) - kMassMargin) * z / n;
    return static_cast<float>(std::max(bound, 0.0));
}

inline float lower_bound_of_bin(int bin) {
    return std::bit_cast<float>(static_cast<uint32_t>(bin) << kHistogramShift);
}

#if defined(RWKV_SAMPLER_SIMD) && defined(__x86_64__)
// The same weights 8 lanes at a time where the CPU has AVX2 (chosen at run time). AVX2 without FMA: the
// same IEEE operations as exp_np4, so the same bits; lane j of the vector is lane j of the sum.
#define RWKV_SAMPLER_AVX2 1
typedef float V8f __attribute__((vector_size(32)));
typedef int32_t V8i __attribute__((vector_size(32)));
typedef double V4d __attribute__((vector_size(32)));

[[gnu::target("avx2")]] double weights_avx2(const float* logits, int n, float max_logit, float* w) {
    V4d acc_lo = {0, 0, 0, 0}, acc_hi = {0, 0, 0, 0};
    const float mm = max_logit, fl = kExpFloor;
    const V8f m8 = {mm, mm, mm, mm, mm, mm, mm, mm};
    const V8f floor8 = {fl, fl, fl, fl, fl, fl, fl, fl};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        V8f l;
        std::memcpy(&l, logits + i, sizeof(l));
        const V8f d = l - m8;
        const V8i below = d < floor8;
        const V8f x = (V8f)((below & (V8i)floor8) | (~below & (V8i)d));
        V8f r, kf, p;
        exp_poly::reduce(x, &r, &kf);
        exp_poly::poly(r, &p);
        const V8i k = __builtin_convertvector(kf, V8i);
        const V8f y = p * (V8f)((k + 127) << 23);
        const V8f w8 = (V8f)(~below & (V8i)y);
        std::memcpy(w + i, &w8, sizeof(w8));
        acc_lo += __builtin_convertvector(load4(w + i), V4d);
        acc_hi += __builtin_convertvector(load4(w + i + 4), V4d);
    }
    double lane[8];
    for (int j = 0; j < 4; ++j) {
        lane[j] = acc_lo[j];
        lane[j + 4] = acc_hi[j];
    }
    for (; i < n; ++i) {
        w[i] = exp_np(logits[i] - max_logit);
        lane[i & 7] += w[i];
    }
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

bool have_avx2() {
    static const bool have = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") != 0;
    }();
    return have;
}
#endif

// The softmax weights; see sampler_detail::softmax_weights.
inline double weights(const float* logits, int n, float max_logit, float* w) {
#ifdef RWKV_SAMPLER_AVX2
    if (have_avx2()) return weights_avx2(logits, n, max_logit, w);
#endif
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
#ifdef RWKV_SAMPLER_SIMD
    const V4f m4 = splat4(max_logit);
    for (; i + 8 <= n; i += 8) {
        const V4f lo = exp_np4(load4(logits + i) - m4);
        const V4f hi = exp_np4(load4(logits + i + 4) - m4);
        store4(w + i, lo);
        store4(w + i + 4, hi);
        for (int j = 0; j < 4; ++j) {
            lane[j] += lo[j];
            lane[j + 4] += hi[j];
        }
    }
#endif
    for (; i < n; ++i) {
        w[i] = exp_np(logits[i] - max_logit);
        lane[i & 7] += w[i];
    }
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

}  // namespace

// ---- helpers shared with the tests -------------------------------------------------------------------

namespace sampler_detail {

float exp_nonpositive(float d) {
    return exp_np(d);
}

double softmax_weights(const float* logits, int n, float max_logit, float* w) {
    return weights(logits, n, max_logit, w);
}

float tempered_weight(float logit, float max_logit, float w, float temperature) {
    return tempered(logit, max_logit, w, temperature, 1.0f / temperature);
}

}  // namespace sampler_detail

// ---- params and RNG ----------------------------------------------------------------------------------

void validate_sampler_params(const SamplerParams& p) {
    // 1/T must be finite too: a subnormal T would turn the tempered weight of the top token into 0·inf = NaN.
    if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature) ||
        (p.temperature > 0.0f && !std::isfinite(1.0f / p.temperature)))
        throw_invalid("sampler: temperature must be 0 or a finite value >= 3e-39, got " + fmt(p.temperature));
    if (!(p.top_p >= 0.0f && p.top_p <= 1.0f)) throw_invalid("sampler: top_p must be in [0, 1], got " + fmt(p.top_p));
    if (p.top_k < 0) throw_invalid("sampler: top_k must be >= 0, got " + std::to_string(p.top_k));
    if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) throw_invalid("sampler: min_p must be in [0, 1], got " + fmt(p.min_p));
    if (!std::isfinite(p.presence_penalty))
        throw_invalid("sampler: presence_penalty must be finite, got " + fmt(p.presence_penalty));
    if (!std::isfinite(p.frequency_penalty))
        throw_invalid("sampler: frequency_penalty must be finite, got " + fmt(p.frequency_penalty));
    if (!(p.penalty_decay >= 0.0f && p.penalty_decay <= 1.0f))
        throw_invalid("sampler: penalty_decay must be in [0, 1], got " + fmt(p.penalty_decay));
}

void Rng::reseed(uint64_t seed) {
    uint64_t x = seed;
    for (uint64_t& s : s_) {  // splitmix64
        x += 0x9E3779B97F4A7C15ull;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        s = z ^ (z >> 31);
    }
}

uint64_t Rng::next_u64() {  // xoshiro256**
    const uint64_t result = std::rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = std::rotl(s_[3], 45);
    return result;
}

// ---- TokenSampler -----------------------------------------------------------------------------------------

TokenSampler::TokenSampler(const SamplerParams& params, int n_vocab)
    : params_(params), n_vocab_(n_vocab), rng_(params.seed) {
    validate_sampler_params(params);
    if (n_vocab <= 0) throw_invalid("sampler: n_vocab must be > 0, got " + std::to_string(n_vocab));
    occurrence_.assign(n_vocab, 0.0);
    seen_.assign(n_vocab, 0);
    seen_ids_.reserve(n_vocab);
    w_.resize(n_vocab);
    q_.resize(n_vocab);
    candidates_.resize(n_vocab);
    radix_tmp_.resize(n_vocab);
    histogram_.resize(2 * kHistogramBins);
    block_sums_.resize((n_vocab + 7) / 8);
    bitmap_.assign((n_vocab + 63) / 64, 0);
}

void TokenSampler::set_params(const SamplerParams& params) {
    validate_sampler_params(params);
    const bool new_seed = params.seed != params_.seed;
    params_ = params;
    if (new_seed) rng_.reseed(params.seed);
}

void TokenSampler::reseed(uint64_t seed) {
    params_.seed = seed;
    rng_.reseed(seed);
}

void TokenSampler::set_banned_tokens(std::vector<int32_t> ids) {
    for (int32_t id : ids)
        if (id < 0 || id >= n_vocab_)
            throw_invalid("sampler: banned token " + std::to_string(id) + " is outside [0, " +
                          std::to_string(n_vocab_) + ")");
    banned_ = std::move(ids);
}

void TokenSampler::set_logit_bias(std::vector<std::pair<int32_t, float>> bias) {
    for (const auto& [id, b] : bias) {
        if (id < 0 || id >= n_vocab_)
            throw_invalid("sampler: logit bias token " + std::to_string(id) + " is outside [0, " +
                          std::to_string(n_vocab_) + ")");
        if (!std::isfinite(b))
            throw_invalid("sampler: logit bias for token " + std::to_string(id) + " must be finite, got " + fmt(b));
    }
    bias_ = std::move(bias);
}

double TokenSampler::occurrence(int32_t token) const {
    if (token < 0 || token >= n_vocab_) return 0.0;
    return occurrence_[token];
}

void TokenSampler::reset() {
    for (int32_t id : seen_ids_) {
        occurrence_[id] = 0.0;
        seen_[id] = 0;
    }
    seen_ids_.clear();
}

void TokenSampler::accept(int32_t token, std::string_view token_text) {
    if (token < 0 || token >= n_vocab_)
        throw_invalid("sampler: accepted token " + std::to_string(token) + " is outside [0, " +
                      std::to_string(n_vocab_) + ")");
    // PIPELINE.generate: `for xxx in occurrence: occurrence[xxx] *= alpha_decay`, then
    // `www = 0 if decode([token]) in ' \t0123456789' else 1` (an empty decode counts as 1 here).
    const double decay = params_.penalty_decay;
    for (int32_t id : seen_ids_) occurrence_[id] *= decay;
    constexpr std::string_view kPresenceOnly = " \t0123456789";
    const double weight = (!token_text.empty() && kPresenceOnly.find(token_text) != std::string_view::npos) ? 0.0 : 1.0;
    if (!seen_[token]) {
        seen_[token] = 1;
        seen_ids_.push_back(token);
        occurrence_[token] = weight;
    } else {
        occurrence_[token] += weight;
    }
}

void TokenSampler::apply_penalties(float* logits) const {
    for (int32_t id : banned_) logits[id] = -kInf;
    for (const auto& [id, b] : bias_) logits[id] += b;
    // `out[n] -= alpha_presence + occurrence[n] * alpha_frequency`: the penalty in double, the
    // subtraction in float, as torch does for a float tensor and a Python float.
    const double presence = params_.presence_penalty;
    const double frequency = params_.frequency_penalty;
    for (int32_t id : seen_ids_) logits[id] -= static_cast<float>(presence + occurrence_[id] * frequency);
}

int32_t TokenSampler::sample(float* logits) {
    apply_penalties(logits);
    return select(logits);
}

int32_t TokenSampler::select(const float* logits) {
    const int n = n_vocab_;
    const double u = rng_.next_double();  // always exactly one step per call

    // Max logit; NaN and +inf are rejected (they make the softmax undefined).
    float m = -kInf;
    bool bad = false;
    int i = 0;
#ifdef RWKV_SAMPLER_SIMD
    V4f m_lo = splat4(-kInf), m_hi = m_lo;
    V4i bad4 = {0, 0, 0, 0};
    for (; i + 8 <= n; i += 8) {
        const V4f lo = load4(logits + i), hi = load4(logits + i + 4);
        bad4 |= ~(lo < kInf) | ~(hi < kInf);
        m_lo = select4(lo > m_lo, lo, m_lo);
        m_hi = select4(hi > m_hi, hi, m_hi);
    }
    for (int j = 0; j < 4; ++j) {
        m = m_lo[j] > m ? m_lo[j] : m;
        m = m_hi[j] > m ? m_hi[j] : m;
        bad |= bad4[j] != 0;
    }
#endif
    for (; i < n; ++i) {
        const float l = logits[i];
        bad |= !(l < kInf);
        m = l > m ? l : m;
    }
    if (bad) {
        for (int j = 0; j < n; ++j)
            if (!(logits[j] < kInf))
                throw_invalid("sampler: logits[" + std::to_string(j) + "] is " + fmt(logits[j]) +
                              "; logits must be finite or -inf");
    }
    if (m == -kInf) throw_invalid("sampler: every logit is -inf (all tokens banned?)");

    const SamplerParams& p = params_;
    if (p.temperature == 0.0f) {  // greedy: lowest id among exact ties
        for (int j = 0; j < n; ++j)
            if (logits[j] == m) return j;
    }

    const bool cut_p = p.top_p < 1.0f;
    const bool cut_k = p.top_k > 0 && p.top_k < n;
    const bool cut_min_p = p.min_p > 0.0f;
    if (!cut_p && !cut_k && !cut_min_p) {
        weights(logits, n, m, w_.data());
        return draw_prefix(logits, m, 0.0f, n - 1, u);
    }
    const double z = weights(logits, n, m, w_.data());
    const int n_keep = find_survivors(z);
    const int32_t last = candidates_[n_keep - 1];
    if (n_keep > n / 16) return draw_prefix(logits, m, w_[last], last, u);
    return draw_list(logits, m, n_keep, u);
}

// Appends to candidates_ every id with w >= threshold, in id order; returns the count. Blocks of 16
// below the threshold (nearly all of them, usually) are skipped with four vector compares.
int TokenSampler::gather(float threshold) {
    const int n = n_vocab_;
    const float* w = w_.data();
    int32_t* c = candidates_.data();
    int count = 0;
    int i = 0;
#ifdef RWKV_SAMPLER_SIMD
    const V4f t4 = splat4(threshold);
    for (; i + 16 <= n; i += 16) {
        const V4i any =
            (load4(w + i) >= t4) | (load4(w + i + 4) >= t4) | (load4(w + i + 8) >= t4) | (load4(w + i + 12) >= t4);
        if (!any4(any)) continue;
        for (int j = i; j < i + 16; ++j) {  // branch-free compaction
            c[count] = j;
            count += w[j] >= threshold ? 1 : 0;
        }
    }
#endif
    for (; i < n; ++i) {
        c[count] = i;
        count += w[i] >= threshold ? 1 : 0;
    }
    return count;
}

// The number of survivors of top-p, top-k and min-p; they are candidates_[0, n_keep) on return, ordered
// by (w desc, id asc), which is the reference's descending sort with ties broken by lower id.
int TokenSampler::find_survivors(double z) {
    const SamplerParams& p = params_;
    const int n = n_vocab_;
    const bool cut_p = p.top_p < 1.0f;
    const bool cut_k = p.top_k > 0 && p.top_k < n;
    const float min_p = p.min_p;  // p < min_p * p_max  <=>  w < min_p, because w_max == 1 exactly
    const int limit = cut_k ? p.top_k : n;
    const double target = static_cast<double>(p.top_p) * z;  // cumsum(p) >= top_p  <=>  cumsum(w) >= top_p Z
    const float* w = w_.data();
    int32_t* c = candidates_.data();

    float threshold = std::max(min_cutoff_bound(p.top_p, z, n), min_p);
    for (int attempt = 0;; ++attempt) {
        int n_candidates = gather(threshold);
        // A second bound from a histogram of the candidates by their top float bits: walk it from the
        // top until the bins seen must hold the nucleus (by a lower bound on their mass), or top_k
        // tokens, then keep only the candidates at or above that bin.
        if (attempt == 0 && n_candidates > kHistogramMinCandidates) {
            uint32_t* h = histogram_.data();
            uint32_t* h2 = histogram_.data() + kHistogramBins;  // two tables halve store-to-load chains
            std::fill(h, h + 2 * kHistogramBins, 0u);
            int pair = 0;
            for (; pair + 2 <= n_candidates; pair += 2) {
                ++h[std::bit_cast<uint32_t>(w[c[pair]]) >> kHistogramShift];
                ++h2[std::bit_cast<uint32_t>(w[c[pair + 1]]) >> kHistogramShift];
            }
            if (pair < n_candidates) ++h[std::bit_cast<uint32_t>(w[c[pair]]) >> kHistogramShift];
            for (int bin = 0; bin < kHistogramBins; ++bin) h[bin] += h2[bin];
            const double need = target * (1.0 + kMassMargin);
            uint64_t count = 0;
            double mass_lower = 0.0;
            float bin_threshold = 0.0f;
            for (int bin = kHistogramBins - 1; bin > 0; --bin) {
                if (h[bin] == 0) continue;
                const float lo = lower_bound_of_bin(bin);
                count += h[bin];
                mass_lower += static_cast<double>(h[bin]) * lo;
                if ((cut_p && mass_lower >= need) || (cut_k && count >= static_cast<uint64_t>(limit))) {
                    bin_threshold = lo;
                    break;
                }
            }
            if (bin_threshold > threshold) {
                threshold = bin_threshold;
                int kept = 0;
                for (int j = 0; j < n_candidates; ++j) {
                    c[kept] = c[j];
                    kept += w[c[j]] >= threshold ? 1 : 0;
                }
                n_candidates = kept;
            }
        }

        const int n_ordered = std::min(limit, n_candidates);
        if (n_candidates > kRadixMinCandidates) {
            radix_order(n_candidates);
        } else {
            auto before = [w](int32_t a, int32_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); };
            if (n_ordered < n_candidates) std::nth_element(c, c + n_ordered, c + n_candidates, before);
            std::sort(c, c + n_ordered, before);
        }

        int cut = -1;  // first sorted index whose cumulative weight reaches the target
        if (cut_p) {
            double acc = 0.0;
            for (int j = 0; j < n_ordered; ++j) {
                acc += w[c[j]];
                if (acc >= target) {
                    cut = j;
                    break;
                }
            }
        }
        if (cut >= 0) {  // everything >= the cutoff weight survives: ties at the cutoff too
            const float cutoff = w[c[cut]];
            int n_keep = cut + 1;
            while (n_keep < n_ordered && w[c[n_keep]] == cutoff) ++n_keep;
            return n_keep;
        }
        // The nucleus reaches past the ordered prefix. The prefix is then the answer when top_k ends it
        // anyway, or when it already holds every token >= min_p (all tokens when min_p == 0); otherwise
        // a bound was too optimistic (rounding; never seen) and everything >= min_p is gathered again.
        if (!cut_p || (cut_k && n_ordered == limit) || threshold <= min_p) return n_ordered;
        if (attempt > 0) throw Error(RWKV_STATUS_INTERNAL, "sampler: top-p cut not found among all tokens");
        threshold = min_p;
    }
}

// Orders candidates_[0, count), which gather() left in id order, by (w desc, id asc): a stable LSD radix
// sort on the complemented bits of w (non-negative floats order like their bit patterns), 11 bits per
// pass; passes where every key has the same digit are skipped.
void TokenSampler::radix_order(int count) {
    int32_t* src = candidates_.data();
    int32_t* dst = radix_tmp_.data();
    const float* w = w_.data();
    uint32_t* h = histogram_.data();
    uint32_t all_or = 0, all_and = ~0u;
    for (int j = 0; j < count; ++j) {
        const uint32_t key = ~std::bit_cast<uint32_t>(w[src[j]]);
        all_or |= key;
        all_and &= key;
    }
    const uint32_t varying = all_or ^ all_and;
    for (int shift = 0; shift < 32; shift += 11) {
        if (((varying >> shift) & 2047) == 0) continue;
        std::fill(h, h + 2048, 0u);
        for (int j = 0; j < count; ++j) ++h[(~std::bit_cast<uint32_t>(w[src[j]]) >> shift) & 2047];
        uint32_t offset = 0;
        for (int d = 0; d < 2048; ++d) {
            const uint32_t k = h[d];
            h[d] = offset;
            offset += k;
        }
        for (int j = 0; j < count; ++j) dst[h[(~std::bit_cast<uint32_t>(w[src[j]]) >> shift) & 2047]++] = src[j];
        std::swap(src, dst);
    }
    if (src != candidates_.data()) std::copy(src, src + count, candidates_.data());
}

namespace {

// Sum of a block of 8 tempered weights (zeros where no survivor), as a fixed tree in double.
inline double block_sum(const float* q8) {
    const double a = (static_cast<double>(q8[0]) + q8[1]) + (static_cast<double>(q8[2]) + q8[3]);
    const double b = (static_cast<double>(q8[4]) + q8[5]) + (static_cast<double>(q8[6]) + q8[7]);
    return a + b;
}

}  // namespace

// The multinomial draw over the survivors' tempered weights q (0 elsewhere), in id order, by blocks of
// 8 ids: S = running double sum of the block sums; the chosen block is the first whose running sum
// exceeds u S; inside it the running sum goes on id by id and the first id to exceed u S is chosen
// (or, if rounding leaves none, the block's last id with q > 0).
//
// draw_list: survivors candidates_[0, n_keep), few of them.
int32_t TokenSampler::draw_list(const float* logits, float m, int n_keep, double u) {
    // Survivors into id order through a bitmap: O(n_vocab / 64 + n_keep), no comparison sort.
    int32_t* c = candidates_.data();
    uint64_t* bits = bitmap_.data();
    for (int j = 0; j < n_keep; ++j) bits[c[j] >> 6] |= uint64_t{1} << (c[j] & 63);
    int filled = 0;
    for (size_t word = 0; word < bitmap_.size() && filled < n_keep; ++word) {
        for (uint64_t b = bits[word]; b != 0; b &= b - 1)
            c[filled++] = static_cast<int32_t>(64 * word + std::countr_zero(b));
        bits[word] = 0;
    }
    const float t = params_.temperature;
    const float inv_t = 1.0f / t;
    for (int j = 0; j < n_keep; ++j) q_[j] = tempered(logits[c[j]], m, w_[c[j]], t, inv_t);
    // Block sums of the blocks that hold survivors (other blocks add exactly 0).
    int n_blocks = 0;
    for (int j = 0; j < n_keep;) {
        const int32_t block = c[j] >> 3;
        float q8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int k = j;
        for (; k < n_keep && (c[k] >> 3) == block; ++k) q8[c[k] & 7] = q_[k];
        block_sums_[n_blocks++] = block_sum(q8);
        j = k;
    }
    double total = 0.0;
    for (int b = 0; b < n_blocks; ++b) total += block_sums_[b];
    const double target = u * total;
    double run = 0.0;
    int32_t chosen = -1;
    for (int j = 0, b = 0; j < n_keep; ++b) {
        const int32_t block = c[j] >> 3;
        int k = j;
        while (k < n_keep && (c[k] >> 3) == block) ++k;
        if (run + block_sums_[b] > target) {
            for (int i = j; i < k; ++i) {
                if (q_[i] <= 0.0f) continue;
                run += q_[i];
                chosen = c[i];
                if (run > target) break;
            }
            return chosen;
        }
        run += block_sums_[b];
        for (int i = j; i < k; ++i)
            if (q_[i] > 0.0f) chosen = c[i];
        j = k;
    }
    return chosen;  // only when rounding put u S at or above S: the last id with q > 0
}

// draw_prefix: survivors = the prefix of the (w desc, id asc) order that ends at (w_last, id_last),
// i.e. w > w_last, or w == w_last and id <= id_last; all tokens when w_last == 0 and id_last == n - 1.
int32_t TokenSampler::draw_prefix(const float* logits, float m, float w_last, int32_t id_last, double u) {
    const int n = n_vocab_;
    const float t = params_.temperature;
    const float inv_t = 1.0f / t;
    const float* w = w_.data();
    // Every token survives and T == 1: q is w itself.
    const bool q_is_w = t == 1.0f && w_last == 0.0f && id_last == n - 1;
    const float* q = q_is_w ? w : q_.data();
    float* qo = q_.data();
    int i = q_is_w ? n : 0;
#ifdef RWKV_SAMPLER_SIMD
    const V4f wl = splat4(w_last), m4 = splat4(m), it4 = splat4(inv_t), zero = splat4(0.0f);
    const V4i il = {id_last, id_last, id_last, id_last};
    for (; i + 4 <= n; i += 4) {
        const V4f w4 = load4(w + i);
        const V4i ids = V4i{i, i + 1, i + 2, i + 3};
        const V4i in = (w4 > wl) | ((w4 == wl) & (ids <= il));
        V4f q4 = w4;
        if (t != 1.0f) q4 = select4(w4 > zero, exp_np4((load4(logits + i) - m4) * it4), zero);
        store4(qo + i, (V4f)(in & (V4i)q4));
    }
#endif
    for (; i < n; ++i) {
        const bool in = w[i] > w_last || (w[i] == w_last && i <= id_last);
        qo[i] = in ? tempered(logits[i], m, w[i], t, inv_t) : 0.0f;
    }
    const int n_full = n / 8;
    for (int b = 0; b < n_full; ++b) block_sums_[b] = block_sum(q + 8 * b);
    int n_blocks = n_full;
    if (n % 8) {
        float q8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        std::copy(q + 8 * n_full, q + n, q8);
        block_sums_[n_blocks++] = block_sum(q8);
    }
    double total = 0.0;
    for (int b = 0; b < n_blocks; ++b) total += block_sums_[b];
    const double target = u * total;
    double run = 0.0;
    int b = 0;
    while (b < n_blocks && !(run + block_sums_[b] > target)) run += block_sums_[b++];
    int32_t chosen = -1;
    if (b == n_blocks) {  // rounding put u S at or above S: the last id with q > 0
        for (int j = n - 1; j >= 0; --j)
            if (q[j] > 0.0f) return j;
    }
    for (int j = 8 * b; j < std::min(n, 8 * b + 8); ++j) {
        if (q[j] <= 0.0f) continue;
        run += q[j];
        chosen = j;
        if (run > target) break;
    }
    return chosen;
}

}  // namespace rwkv
