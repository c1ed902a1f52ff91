// Synthetic RWKV-7 checkpoints (see synthetic.h and docs/synthetic.md).
//
// Every element is drawn from a counter-based generator: bits(i) = wymum(key + (i + 1) · P), the output function
// of wyrand (one 64×64→128-bit multiply), with key = SplitMix64 hash of (seed, tensor index, stream). An element's
// value depends on nothing else, so tensors are filled in parallel, in any order, with identical bytes for any thread
// count.
//
// Normals are Irwin–Hall sums of the four 16-bit halves of one 64-bit draw (sum of 4 uniforms, rescaled to unit
// variance): smooth, bounded at ±3.46σ, never exactly zero, and several times cheaper than Box–Muller. Every
// weight enters the model through a dot product over hundreds of inputs, where the sum is Gaussian anyway.
//
// Weight families follow tools/reference/make_fixtures.py (scales chosen so a random model behaves like a trained
// one numerically: unit LN outputs, decays spread over (0.55, 1), gates and ICL rates away from saturation, logits
// spread over a few units), with the square projections Gaussian N(0, 1/C) instead of orthogonal.
//
// FFN sparsity knob. ReLU²'s pre-activation is p = Kf z, z = the token-shifted LN2 output, with no bias term, so
// the lever must be a direction that every z shares. As in trained models with a few "massive" channels, each
// layer has m = 8 bias channels whose ln2.weight is small (0.05) and whose ln2.bias is large (±β/√m, β = 4): along
// the unit vector e = ±1/√m on those channels, e·z ≈ β for every token (±1%). Every row of ffn.key is shifted by
// −γ e, so
//   p = K0 z − γ (e·z),    K0 ~ N(0, 1/C) independent of z  ⇒  P(p <= 0 | z) = Φ(γ (e·z) √C / |z|).
// γ is found per layer by bisection so that the mean of Φ over LN-like random z (the layer's stored ln2 affine and
// ffn.x_k token shift applied to two LN outputs of consecutive tokens) equals the target. Consecutive LN outputs
// are given a correlation of 0.2: the forward of these random models shows 0.07 in layer 0 rising to 0.3 in deep
// layers (the WKV state carries context), and |z| grows with it. With no target γ = 0 and the model keeps its
// natural ~50%. The result is then measured directly: stored ffn.key rows times held-out z's.
#include "model/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>

#include "common/error.h"
#include "common/half.h"
#include "common/thread_pool.h"

namespace rwkv {
namespace {

// ---- counter-based random numbers

inline uint64_t mix64(uint64_t z) {  // SplitMix64 output function (Steele, Lea, Flood 2014)
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// wyrand's output function of its state (Wang Yi, wyhash v4): the high and low halves of a 128-bit product, xored.
inline uint64_t wymum(uint64_t a) {
    const unsigned __int128 m = static_cast<unsigned __int128>(a) * (a ^ 0xe7037ed1a0b428dbull);
    return uint64_t(m >> 64) ^ uint64_t(m);
}

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;
constexpr uint64_t kWyIncrement = 0xa0761d6478bd642full;

// Standard deviation of the sum of four uniform integers in [0, 65535]: sqrt(4 (65536² − 1) / 12).
constexpr float kIrwinHallScale = 1.0f / 37837.2273f;

struct Stream {
    uint64_t key;
    Stream(uint64_t seed, uint64_t tensor, uint64_t stream)
        : key(mix64(mix64(seed ^ kGolden) + tensor * 0x100 + stream)) {}
    uint64_t bits(uint64_t i) const { return wymum(key + (i + 1) * kWyIncrement); }
    // ~N(0, 1): Irwin–Hall(4), mean 0 (to 1e-5), never exactly 0.
    float normal(uint64_t i) const {
        uint64_t b = bits(i);
        uint32_t s =
            uint32_t(b & 0xffff) + uint32_t((b >> 16) & 0xffff) + uint32_t((b >> 32) & 0xffff) + uint32_t(b >> 48);
        return (float(int32_t(s) - 131070) + 0.5f) * kIrwinHallScale;
    }
    // Uniform in [0, 1).
    float uniform(uint64_t i) const { return float(bits(i) >> 40) * (1.0f / 16777216.0f); }
};

// Auxiliary streams (not tensors): their "tensor index" lies above any real one.
constexpr uint64_t kAuxBase = uint64_t(1) << 40;
enum AuxStream : uint64_t { kAuxDirection = 0, kAuxCalibration = 1, kAuxHeldOut = 2, kAuxPermutation = 3 };
uint64_t aux_index(AuxStream which, int layer) {
    return kAuxBase + uint64_t(which) * (uint64_t(1) << 20) + layer;
}

// ---- dtype conversion

inline uint16_t f32_to_f16(float f) {  // round to nearest even; overflow -> inf; NaN stays NaN
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000;
    x &= 0x7fffffff;
    if (x > 0x7f800000u) return uint16_t(sign | 0x7e00);
    if (x >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // >= 65520 rounds to inf
    if (x < 0x38800000u) {                                 // |f| < 2^-14: f16 subnormal or zero
        if (x < 0x33000000u) return uint16_t(sign);        // < 2^-25 (2^-25 itself is a tie, rounds to 0)
        const uint32_t e = x >> 23, m = (x & 0x7fffff) | 0x800000;
        const uint32_t shift = 126 - e;  // m · 2^(e-150) in units of 2^-24
        uint32_t r = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return uint16_t(sign | r);
    }
    return uint16_t(sign | ((x + 0xc8000fffu + ((x >> 13) & 1)) >> 13));  // rebias 127 -> 15, RNE
}

inline float to_float(const void* p, DType t, int64_t i) {
    switch (t) {
        case DType::F32:
            return static_cast<const float*>(p)[i];
        case DType::F16:
            return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
        case DType::BF16:
            return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    }
    return 0;
}

void store_floats(const float* src, void* dst, DType t, int64_t n) {
    switch (t) {
        case DType::F32:
            std::memcpy(dst, src, size_t(n) * 4);
            return;
        case DType::F16:
            for (int64_t i = 0; i < n; i++) static_cast<uint16_t*>(dst)[i] = f32_to_f16(src[i]);
            return;
        case DType::BF16:
            for (int64_t i = 0; i < n; i++) static_cast<uint16_t*>(dst)[i] = f32_to_bf16(src[i]);
            return;
    }
}

// ---- presets

struct Preset {
    const char* name;
    int L, C, F, V, Dw, Da, Dv, Dg;
};

// rwkv7.md §7 (7.2B and 13.3B LoRA widths from the PEFT formula, which reproduces every verified width).
constexpr Preset kPresets[] = {
    // name     L   C     F      V      Dw   Da   Dv  Dg
    {"tiny", 2, 128, 256, 256, 16, 16, 8, 32},             // tools/reference/make_fixtures.py (F = 2C, V = 256)
    {"0.1b", 12, 768, 3072, 65536, 64, 64, 32, 128},       //
    {"0.4b", 24, 1024, 4096, 65536, 64, 64, 32, 128},      //
    {"1.5b", 24, 2048, 8192, 65536, 96, 96, 64, 256},      //
    {"2.9b", 32, 2560, 10240, 65536, 96, 96, 64, 320},     //
    {"7.2b", 32, 4096, 16384, 65536, 128, 128, 96, 480},   // LoRA widths predicted (rwkv7.md §7)
    {"13.3b", 61, 4096, 16384, 65536, 128, 128, 96, 480},  // LoRA widths predicted
};

const Preset& find_preset(const std::string& name) {
    std::string lower = name;
    for (char& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    for (const Preset& p : kPresets)
        if (lower == p.name) return p;
    std::string list;
    for (const Preset& p : kPresets) list += (list.empty() ? "" : ", ") + std::string(p.name);
    throw_invalid("unknown synthetic model preset '" + name + "' (known: " + list + ")");
}

// ---- the generation plan

constexpr double kLn2BiasNorm = 4.0;         // β: |shared component of ln2.bias| (see the header comment)
constexpr int kBiasChannels = 8;             // m: channels carrying it
constexpr float kBiasChannelWeight = 0.05f;  // their ln2.weight
constexpr double kShiftCorrelation = 0.2;    // assumed correlation of consecutive tokens' LN2 outputs

enum class Family {
    Normal,     // mean + std · N
    Uniform,    // U(lo, hi)
    Decay,      // w0: U(-6, 2.5) + 0.2 N, decays from ~0.9985 to ~0.57
    Ln2Weight,  // 1 + 0.05 N, or 0.05 (1 + 0.05 N) on the layer's bias channels
    Ln2Bias,    // 0.02 N + β e_l
    FfnKey,     // N / √C − γ_l e_l[c]
    Head,       // (0.85 ê[π(v)] + N) / √C, ê = standardised emb row
    Centered,   // std · (N − row mean): ffn.value, so that the mean of ReLU² adds no token-independent vector
};

struct Plan {
    std::string name;
    std::vector<int64_t> shape;
    Family family = Family::Normal;
    float a = 0, b = 1;  // Normal: mean, std; Uniform: lo, hi
    int layer = -1;
};

class Builder {
  public:
    explicit Builder(const ModelConfig& c) : c_(c) {}

    std::vector<Plan> plans;

    void normal(const std::string& name, std::vector<int64_t> shape, double mean, double std) {
        plans.push_back({name, std::move(shape), Family::Normal, float(mean), float(std)});
    }
    void uniform(const std::string& name, std::vector<int64_t> shape, double lo, double hi) {
        plans.push_back({name, std::move(shape), Family::Uniform, float(lo), float(hi)});
    }
    void special(const std::string& name, std::vector<int64_t> shape, Family f, int layer = -1) {
        plans.push_back({name, std::move(shape), f, 0, 1, layer});
    }

    // Native names, stored shapes, in the order of rwkv7.md §1.2 (as make_fixtures.py writes them).
    void build() {
        const int64_t C = c_.n_embd, F = c_.n_ffn, V = c_.n_vocab, H = c_.n_head, N = c_.head_size;
        const int64_t Dw = c_.d_decay, Da = c_.d_aaa, Dv = c_.d_value, Dg = c_.d_gate;
        const std::vector<int64_t> vec = {1, 1, C};
        const double rC = 1.0 / std::sqrt(double(C));
        normal("emb.weight", {V, C}, 0, 1);  // unit scale: LN0 is well conditioned
        for (int l = 0; l < c_.n_layer; l++) {
            const std::string p = "blocks." + std::to_string(l) + ".", a = p + "att.", f = p + "ffn.";
            normal(p + "ln1.weight", {C}, 1, 0.05);
            normal(p + "ln1.bias", {C}, 0, 0.02);
            special(p + "ln2.weight", {C}, Family::Ln2Weight, l);
            special(p + "ln2.bias", {C}, Family::Ln2Bias, l);
            if (l == 0) {
                normal(p + "ln0.weight", {C}, 1, 0.05);
                normal(p + "ln0.bias", {C}, 0, 0.02);
            }
            for (const char* x : {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"}) uniform(a + x, vec, 0.05, 0.95);
            special(a + "w0", vec, Family::Decay);
            normal(a + "r_k", {H, N}, 0, 0.15);
            normal(a + "w1", {C, Dw}, 0, rC);
            normal(a + "w2", {Dw, C}, 0, 0.6 / std::sqrt(double(Dw)));
            normal(a + "a1", {C, Da}, 0, rC);
            normal(a + "a2", {Da, C}, 0, 0.8 / std::sqrt(double(Da)));
            normal(a + "a0", vec, -0.2, 0.6);
            normal(a + "g1", {C, Dg}, 0, 1.5 * rC);
            normal(a + "g2", {Dg, C}, 0, 2.0 / std::sqrt(double(Dg)));
            if (l > 0) {  // layer 0 has no value residual in released files (rwkv7.md §1.2)
                normal(a + "v2", {Dv, C}, 0, 0.8 / std::sqrt(double(Dv)));
                normal(a + "v1", {C, Dv}, 0, rC);
                normal(a + "v0", vec, 0.3, 0.8);
            }
            normal(a + "k_k", vec, 0.85, 0.05);
            normal(a + "k_a", vec, 1.0, 0.05);
            for (const char* m : {"receptance", "key", "value", "output"}) normal(a + m + ".weight", {C, C}, 0, rC);
            normal(a + "ln_x.weight", {C}, 0.7, 0.05);
            normal(a + "ln_x.bias", {C}, 0, 0.02);
            uniform(f + "x_k", vec, 0.05, 0.95);
            special(f + "key.weight", {F, C}, Family::FfnKey, l);
            plans.push_back({f + "value.weight", {C, F}, Family::Centered, 0, float(0.7 / std::sqrt(double(F)))});
        }
        normal("ln_out.weight", {C}, 1, 0.05);
        normal("ln_out.bias", {C}, 0, 0.02);
        special("head.weight", {V, C}, Family::Head);
    }

  private:
    const ModelConfig& c_;
};

int64_t numel_of(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

void parallel(ThreadPool* pool, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (pool)
        pool->parallel_for(n, grain, fn);
    else if (n > 0)
        fn(0, n);
}

// The layer's bias direction e: ±1/√m on m distinct channels, 0 elsewhere.
std::vector<float> bias_direction(uint64_t seed, int layer, int64_t C) {
    const Stream s(seed, aux_index(kAuxDirection, layer), 0);
    const int m = int(std::min<int64_t>(kBiasChannels, C));
    std::vector<float> e(C, 0.0f);
    for (uint64_t i = 0, placed = 0; placed < uint64_t(m); i++) {
        const uint64_t b = s.bits(i);
        float& slot = e[(b >> 1) % uint64_t(C)];
        if (slot != 0) continue;
        slot = float((b & 1) ? 1.0 : -1.0) / std::sqrt(float(m));
        placed++;
    }
    return e;
}

// `count` channel-mix inputs z = u + (u' − u) ⊙ x_k, where u' (previous token) and u are LN outputs of
// standard normal rows correlated by kShiftCorrelation, with the layer's ln2 affine: what the FFN sees for a token
// after the first. Row-major [count, C].
std::vector<float> ln_like_inputs(const Stream& s, int count, const std::vector<float>& w, const std::vector<float>& b,
                                  const std::vector<float>& mu) {
    const int64_t C = int64_t(w.size());
    const float rho = float(kShiftCorrelation), rho_c = float(std::sqrt(1.0 - kShiftCorrelation * kShiftCorrelation));
    std::vector<float> z(size_t(count) * C), u(2 * C);
    for (int k = 0; k < count; k++) {
        for (int j = 0; j < 2; j++) {
            float* x = u.data() + j * C;
            for (int64_t c = 0; c < C; c++) {
                const float n = s.normal((uint64_t(k) * 2 + j) * C + c);
                x[c] = j == 0 ? n : rho * u[c] + rho_c * n;
            }
        }
        for (int j = 0; j < 2; j++) {  // LN, then the affine
            float* x = u.data() + j * C;
            double sum = 0, sq = 0;
            for (int64_t c = 0; c < C; c++) sum += x[c];
            const double mean = sum / C;
            for (int64_t c = 0; c < C; c++) sq += (x[c] - mean) * (x[c] - mean);
            const double inv = 1.0 / std::sqrt(sq / C + 1e-5);
            for (int64_t c = 0; c < C; c++) x[c] = float((x[c] - mean) * inv) * w[c] + b[c];
        }
        for (int64_t c = 0; c < C; c++) z[k * C + c] = u[c] + (u[C + c] - u[c]) * mu[c];
    }
    return z;
}

// Per-layer γ such that the mean over LN-like z of Φ(γ · t(z)), t = (e·z) √C / |z|, equals the target.
float calibrate_shift(uint64_t seed, int layer, const std::vector<float>& e, const std::vector<float>& w,
                      const std::vector<float>& b, const std::vector<float>& mu, double target) {
    constexpr int kSamples = 1024;
    const int64_t C = int64_t(e.size());
    const std::vector<float> z = ln_like_inputs(Stream(seed, aux_index(kAuxCalibration, layer), 0), kSamples, w, b, mu);
    std::vector<double> t(kSamples);
    for (int k = 0; k < kSamples; k++) {
        double ez = 0, zz = 0;
        for (int64_t c = 0; c < C; c++) {
            ez += double(e[c]) * z[k * C + c];
            zz += double(z[k * C + c]) * z[k * C + c];
        }
        t[k] = ez * std::sqrt(double(C) / zz);
    }
    auto fraction = [&](double g) {
        double s = 0;
        for (double tk : t) s += 0.5 * std::erfc(-g * tk / std::sqrt(2.0));
        return s / kSamples;
    };
    double lo = -50, hi = 50;
    for (int it = 0; it < 100 && hi - lo > 1e-7; it++) {
        const double mid = 0.5 * (lo + hi);
        (fraction(mid) < target ? lo : hi) = mid;
    }
    return float(0.5 * (lo + hi));
}

// Fraction of p = ffn.key · z <= 0 over a spread of stored rows and held-out LN-like z's of one layer.
double measure_layer_sparsity(uint64_t seed, int layer, const TensorView& key, const std::vector<float>& w,
                              const std::vector<float>& b, const std::vector<float>& mu) {
    constexpr int kRows = 256, kSamples = 64;
    const int64_t F = key.shape[0], C = key.shape[1];
    const int rows = int(std::min<int64_t>(F, kRows));
    const std::vector<float> z = ln_like_inputs(Stream(seed, aux_index(kAuxHeldOut, layer), 0), kSamples, w, b, mu);
    std::vector<float> row(C);
    int64_t nonpos = 0;
    for (int r = 0; r < rows; r++) {
        const int64_t f = int64_t(r) * F / rows;
        for (int64_t c = 0; c < C; c++) row[c] = to_float(key.data, key.dtype, f * C + c);
        for (int k = 0; k < kSamples; k++) {
            const float* zk = z.data() + size_t(k) * C;
            float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            int64_t c = 0;
            for (; c + 8 <= C; c += 8)
                for (int j = 0; j < 8; j++) acc[j] += row[c + j] * zk[c + j];
            float p = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            for (; c < C; c++) p += row[c] * zk[c];
            nonpos += p <= 0;
        }
    }
    return double(nonpos) / (double(rows) * kSamples);
}

int64_t gcd64(int64_t a, int64_t b) {
    return b == 0 ? a : gcd64(b, a % b);
}

}  // namespace

const std::vector<std::string>& synthetic_presets() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const Preset& p : kPresets) v.push_back(p.name);
        return v;
    }();
    return names;
}

ModelConfig synthetic_config(const std::string& preset) {
    const Preset& p = find_preset(preset);
    ModelConfig c;
    c.n_layer = p.L;
    c.n_embd = p.C;
    c.head_size = 64;
    c.n_head = p.C / 64;
    c.n_vocab = p.V;
    c.n_ffn = p.F;
    c.d_decay = p.Dw;
    c.d_aaa = p.Da;
    c.d_value = p.Dv;
    c.d_gate = p.Dg;
    return c;
}

int64_t checkpoint_param_count(const ModelConfig& c) {
    const int64_t C = c.n_embd, L = c.n_layer;
    const int64_t lora = 2 * C * (int64_t(c.d_decay) + c.d_aaa + c.d_gate);  // w1/w2, a1/a2, g1/g2
    const int64_t vectors = 18 * C;  // ln1, ln2, x_r..x_g, w0, a0, r_k, k_k, k_a, ln_x, ffn.x_k
    const int64_t layer = 4 * C * C + 2 * C * int64_t(c.n_ffn) + lora + vectors;
    const int64_t value_residual = 2 * C * int64_t(c.d_value) + C;                     // v1, v2, v0: layers >= 1 only
    return 2 * int64_t(c.n_vocab) * C + 4 * C + L * layer + (L - 1) * value_residual;  // + emb, head, ln0, ln_out
}

void convert_floats(const void* src, DType src_type, void* dst, DType dst_type, int64_t n) {
    if (src_type == dst_type) {
        std::memcpy(dst, src, size_t(n) * dtype_size(src_type));
        return;
    }
    constexpr int64_t kBlock = 4096;
    float buf[kBlock];
    for (int64_t i = 0; i < n; i += kBlock) {
        const int64_t m = std::min(kBlock, n - i);
        for (int64_t j = 0; j < m; j++) buf[j] = to_float(src, src_type, i + j);
        store_floats(buf, static_cast<uint8_t*>(dst) + size_t(i) * dtype_size(dst_type), dst_type, m);
    }
}

std::unique_ptr<Checkpoint> make_synthetic_checkpoint(const SyntheticSpec& spec, ThreadPool* pool,
                                                      double* achieved_sparsity) {
    const Preset& preset = find_preset(spec.preset);
    ModelConfig c = synthetic_config(preset.name);
    if (spec.n_vocab > 0) c.n_vocab = spec.n_vocab;
    if (c.n_vocab > (1 << 24))
        throw_invalid("synthetic model: vocabulary of " + std::to_string(c.n_vocab) + " rows is too large");
    const bool sparse = !(spec.ffn_sparsity < 0);  // NaN counts as a (bad) target
    if (sparse && !(spec.ffn_sparsity >= 0 && spec.ffn_sparsity <= 0.99f))
        throw_invalid("synthetic model: FFN sparsity " + std::to_string(spec.ffn_sparsity) +
                      " is outside [0, 0.99] (use a negative value for the natural ~0.5)");

    Builder builder(c);
    builder.build();
    const std::vector<Plan>& plans = builder.plans;
    auto ckpt =
        std::make_unique<Checkpoint>("synthetic:" + std::string(preset.name), CheckpointFormat::Safetensors, nullptr);
    const int64_t C = c.n_embd, V = c.n_vocab;
    const uint64_t seed = spec.seed;
    const DType dt = spec.dtype;

    std::vector<std::vector<float>> dirs(c.n_layer);
    for (int l = 0; l < c.n_layer; l++) dirs[l] = bias_direction(seed, l, C);
    std::vector<float> gamma(c.n_layer, 0.0f);

    // Permutation of the vocabulary for the head's tie to the embedding: v -> (m v + s) mod V, gcd(m, V) = 1.
    const Stream perm_stream(seed, aux_index(kAuxPermutation, 0), 0);
    int64_t perm_mul = int64_t(perm_stream.bits(0) % uint64_t(V)) | 1;
    while (gcd64(perm_mul, V) != 1) perm_mul += 2;
    const int64_t perm_add = int64_t(perm_stream.bits(1) % uint64_t(V));

    std::vector<TensorView> views(plans.size());
    for (size_t ti = 0; ti < plans.size(); ti++) {
        views[ti].name = plans[ti].name;
        views[ti].dtype = dt;
        views[ti].shape = plans[ti].shape;
        views[ti].data = ckpt->own(size_t(numel_of(plans[ti].shape)) * dtype_size(dt));
    }
    auto index_of = [&](const std::string& name) {
        for (size_t i = 0; i < plans.size(); i++)
            if (plans[i].name == name) return i;
        throw_invalid("synthetic model: internal error, no tensor " + name);
    };
    // The fp32 values of row r of tensor ti (a function of seed, ti and the element index only), into buf[cols];
    // every dtype stores these values rounded.
    const float rC = float(1.0 / std::sqrt(double(C)));
    const size_t emb_index = index_of("emb.weight");
    std::function<void(size_t, int64_t, float*)> row_values = [&](size_t ti, int64_t r, float* buf) {
        const Plan& p = plans[ti];
        const int64_t cols = p.shape.back();
        const uint64_t base = uint64_t(r) * cols;
        const Stream s(seed, ti, 0);
        const float* e = p.layer >= 0 ? dirs[p.layer].data() : nullptr;
        switch (p.family) {
            case Family::Normal:
                for (int64_t j = 0; j < cols; j++) buf[j] = p.a + p.b * s.normal(base + j);
                break;
            case Family::Centered: {
                double sum = 0;
                for (int64_t j = 0; j < cols; j++) sum += buf[j] = s.normal(base + j);
                const float mean = float(sum / cols);
                for (int64_t j = 0; j < cols; j++) buf[j] = p.b * (buf[j] - mean);
                break;
            }
            case Family::Uniform:
                for (int64_t j = 0; j < cols; j++) buf[j] = p.a + (p.b - p.a) * s.uniform(base + j);
                break;
            case Family::Decay: {
                const Stream s2(seed, ti, 1);
                for (int64_t j = 0; j < cols; j++)
                    buf[j] = -6.0f + 8.5f * s.uniform(base + j) + 0.2f * s2.normal(base + j);
                break;
            }
            case Family::Ln2Weight:
                for (int64_t j = 0; j < cols; j++)
                    buf[j] = (e[j] != 0 ? kBiasChannelWeight : 1.0f) * (1.0f + 0.05f * s.normal(base + j));
                break;
            case Family::Ln2Bias:
                for (int64_t j = 0; j < cols; j++) buf[j] = 0.02f * s.normal(base + j) + float(kLn2BiasNorm) * e[j];
                break;
            case Family::FfnKey: {
                const float g = gamma[p.layer];
                for (int64_t j = 0; j < cols; j++) buf[j] = rC * s.normal(base + j) - g * e[j];
                break;
            }
            case Family::Head: {
                // ê: embedding row π(r), standardised as LN0 would make it.
                thread_local std::vector<float> src;
                src.resize(cols);
                row_values(emb_index, (perm_mul * r + perm_add) % V, src.data());
                double sum = 0, sq = 0;
                for (int64_t j = 0; j < cols; j++) sum += src[j];
                const double mean = sum / cols;
                for (int64_t j = 0; j < cols; j++) sq += (src[j] - mean) * (src[j] - mean);
                const float inv = float(1.0 / std::sqrt(sq / cols + 1e-12)), m = float(mean);
                for (int64_t j = 0; j < cols; j++) buf[j] = rC * (0.85f * (src[j] - m) * inv + s.normal(base + j));
                break;
            }
        }
    };
    auto generate = [&](size_t ti) {
        const int64_t n = numel_of(plans[ti].shape), cols = plans[ti].shape.back(), rows = n / cols;
        uint8_t* dst = static_cast<uint8_t*>(const_cast<void*>(views[ti].data));
        const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / cols);
        parallel(pool, rows, grain, [&](int64_t r0, int64_t r1) {
            std::vector<float> buf(cols);
            for (int64_t r = r0; r < r1; r++) {
                row_values(ti, r, buf.data());
                store_floats(buf.data(), dst + size_t(r * cols) * dtype_size(dt), dt, cols);
            }
        });
    };
    auto f32_vector = [&](const std::string& name) {  // a [C] or [1, 1, C] tensor's fp32 values
        std::vector<float> v(C);
        row_values(index_of(name), 0, v.data());
        return v;
    };

    // Everything but ffn.key first, then the per-layer shifts, which depend on the ln2 and ffn.x_k vectors, then
    // ffn.key.
    for (size_t ti = 0; ti < plans.size(); ti++)
        if (plans[ti].family != Family::FfnKey) generate(ti);
    struct LayerInputs {
        std::vector<float> w, b, mu;
    };
    std::vector<LayerInputs> inputs(c.n_layer);
    for (int l = 0; l < c.n_layer; l++) {
        const std::string p = "blocks." + std::to_string(l) + ".";
        inputs[l] = {f32_vector(p + "ln2.weight"), f32_vector(p + "ln2.bias"), f32_vector(p + "ffn.x_k")};
    }
    if (sparse) {
        parallel(pool, c.n_layer, 1, [&](int64_t l0, int64_t l1) {
            for (int64_t l = l0; l < l1; l++)
                gamma[l] =
                    calibrate_shift(seed, int(l), dirs[l], inputs[l].w, inputs[l].b, inputs[l].mu, spec.ffn_sparsity);
        });
    }
    for (size_t ti = 0; ti < plans.size(); ti++)
        if (plans[ti].family == Family::FfnKey) generate(ti);

    if (achieved_sparsity) {
        std::vector<double> per_layer(c.n_layer);
        parallel(pool, c.n_layer, 1, [&](int64_t l0, int64_t l1) {
            for (int64_t l = l0; l < l1; l++) {
                const TensorView& key = views[index_of("blocks." + std::to_string(l) + ".ffn.key.weight")];
                per_layer[l] = measure_layer_sparsity(seed, int(l), key, inputs[l].w, inputs[l].b, inputs[l].mu);
            }
        });
        *achieved_sparsity = std::accumulate(per_layer.begin(), per_layer.end(), 0.0) / c.n_layer;
    }
    for (TensorView& v : views) ckpt->add(std::move(v));
    return ckpt;
}

}  // namespace rwkv
