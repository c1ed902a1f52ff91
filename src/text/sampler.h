// Token sampler: repetition penalties, bans, logit bias, then the ChatRWKV PIPELINE rule
// (softmax -> top-p -> top-k -> min-p -> probs^(1/T) -> multinomial) with a seeded, portable RNG.
// The exact order of operations, every tie rule and what a seed guarantees are in docs/sampling.md.
//
// One TokenSampler per sequence; not thread-safe. All buffers are allocated by the constructor (about
// 30 bytes per vocabulary entry): sample(), select(), accept() and reset() never allocate.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace rwkv {

// Defaults are CR PIPELINE_ARGS (rwkv7.md §5): T 1.0, top_p 0.85, top_k 0, presence 0.2,
// frequency 0.2, decay 0.996. min_p is not in the reference; 0 disables it.
struct SamplerParams {
    float temperature = 1.0f;        // >= 0; 0 = greedy (argmax, lowest id among exact ties)
    float top_p = 0.85f;             // [0, 1]; 1 = no nucleus cut, 0 = only the most likely token(s)
    int top_k = 0;                   // >= 0; 0 or >= n_vocab = off
    float min_p = 0.0f;              // [0, 1]; drop p < min_p * p_max (on the untempered distribution)
    float presence_penalty = 0.2f;   // subtracted once from any token in the occurrence map
    float frequency_penalty = 0.2f;  // subtracted per (decayed) occurrence
    float penalty_decay = 0.996f;    // [0, 1]; occurrences are multiplied by this per accepted token
    uint64_t seed = kDefaultSeed;    // any value; see Rng

    static constexpr uint64_t kDefaultSeed = 0x5EED5EED5EED5EEDull;
};

// Throws rwkv::Error (RWKV_STATUS_INVALID_ARGUMENT) naming the first bad field and its value.
void validate_sampler_params(const SamplerParams& params);

// xoshiro256** (Blackman & Vigna 2018), state seeded by four successive splitmix64 outputs of the seed.
// Fully specified by integer arithmetic, so a seed gives the same stream on every platform and compiler.
class Rng {
  public:
    explicit Rng(uint64_t seed = SamplerParams::kDefaultSeed) { reseed(seed); }
    void reseed(uint64_t seed);
    uint64_t next_u64();
    // Uniform in [0, 1): the top 53 bits of next_u64() times 2^-53.
    double next_double() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  private:
    uint64_t s_[4];
};

class TokenSampler {
  public:
    // n_vocab: length of every logits array passed to sample()/select(). Throws on bad params.
    TokenSampler(const SamplerParams& params, int n_vocab);

    // Applies bans, logit bias and penalties to `logits` in place (apply_penalties), then selects a
    // token (select). On return `logits` holds the penalised logits. Advances the RNG by exactly one
    // step, whatever the parameters (greedy included). Throws when a logit is NaN or +inf, or when
    // every logit is -inf.
    int32_t sample(float* logits);

    // The two halves of sample(), for callers that want to inspect or change the logits in between.
    void apply_penalties(float* logits) const;
    int32_t select(const float* logits);

    // Records a generated token that is not a stop token (ChatRWKV PIPELINE.generate): every existing
    // occurrence is multiplied by penalty_decay, then the token gains weight 1, or 0 when token_text
    // is a non-empty substring of " \t0123456789" (whitespace and digit tokens then pay the presence
    // penalty only). Prompt tokens must not be recorded.
    void accept(int32_t token, std::string_view token_text);
    void reset();  // forgets all occurrences (start of a reply); RNG, bans and bias are kept

    // Replaces the parameters (validated first; on error nothing changes). Occurrences are kept.
    // The RNG is reseeded only when params.seed differs from the current seed.
    void set_params(const SamplerParams& params);
    void reseed(uint64_t seed);  // restarts the stream of `seed` and stores it in params().seed

    // Banned ids get -inf. Logit bias is added to the logit; repeated ids add up. Both replace the
    // previous lists; ids must be in [0, n_vocab) and biases finite, else they throw and keep the old.
    void set_banned_tokens(std::vector<int32_t> ids);
    void set_logit_bias(std::vector<std::pair<int32_t, float>> bias);

    const SamplerParams& params() const { return params_; }
    int n_vocab() const { return n_vocab_; }
    double occurrence(int32_t token) const;  // 0 for tokens never accepted since reset()
    const std::vector<int32_t>& banned_tokens() const { return banned_; }
    const std::vector<std::pair<int32_t, float>>& logit_bias() const { return bias_; }
    // For a sampler running on a device (backend/cuda): the ids apply_penalties() penalises, in its order, and
    // the uniform select() would draw next (advances the RNG by the one step select() takes).
    const std::vector<int32_t>& seen_ids() const { return seen_ids_; }
    double draw_uniform() { return rng_.next_double(); }

  private:
    int gather(float threshold);
    int find_survivors(double z);
    void radix_order(int count);
    int32_t draw_list(const float* logits, float max_logit, int n_keep, double u);
    int32_t draw_prefix(const float* logits, float max_logit, float w_last, int32_t id_last, double u);

    SamplerParams params_;
    int n_vocab_;
    Rng rng_;
    std::vector<int32_t> banned_;
    std::vector<std::pair<int32_t, float>> bias_;

    std::vector<double> occurrence_;  // (n_vocab) decayed count; meaningful where seen_ is set
    std::vector<uint8_t> seen_;       // (n_vocab) 1 if the token is in the occurrence map
    std::vector<int32_t> seen_ids_;   // ids in the map, in first-seen order

    std::vector<float> w_;             // (n_vocab) scratch: softmax weights exp(l - max), max -> 1
    std::vector<float> q_;             // (n_vocab) scratch: tempered weights, by id or by survivor
    std::vector<int32_t> candidates_;  // (n_vocab) scratch: candidate ids, ordered by (w desc, id asc)
    std::vector<int32_t> radix_tmp_;   // (n_vocab) scratch for radix_order
    std::vector<uint32_t> histogram_;  // (2, 2048) scratch: counts by the top 13 bits of w; radix digits
    std::vector<uint64_t> bitmap_;     // ((n_vocab + 63) / 64) scratch, all zero between calls
    std::vector<double> block_sums_;   // ((n_vocab + 7) / 8) scratch: sums of q over blocks of 8 ids
};

// Building blocks shared with the tests, which re-derive the selection with a full sort.
namespace sampler_detail {

// exp(d) for d <= 0 in float: Cody-Waite reduction + degree-6 polynomial (Cephes expf), error below
// 2 ulp; exactly 1 at d == 0 and exactly 0 for d < -87 (and -inf). No libm, no FMA: bit-identical on
// every IEEE-754 platform.
float exp_nonpositive(float d);

// w[i] = exp_nonpositive(logits[i] - max_logit) for i < n; returns Z = sum of w in double, summed in
// 8 interleaved lanes (lane j holds the i with i % 8 == j, each in index order) combined as
// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
double softmax_weights(const float* logits, int n, float max_logit, float* w);

// Tempered weight of a survivor: w when T == 1, else exp_nonpositive((logit - max_logit) * (1 / T))
// computed in float, and 0 whenever w == 0.
float tempered_weight(float logit, float max_logit, float w, float temperature);

}  // namespace sampler_detail

}  // namespace rwkv
