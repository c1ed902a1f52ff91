// Synthetic models: preset shapes against rwkv7.md §7, the native layout the loader expects, determinism across
// thread counts, realistic scales, and the FFN sparsity knob measured inside the real forward pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu_backend.h"
#include "common/error.h"
#include "common/half.h"
#include "common/thread_pool.h"
#include "model/rwkv7.h"
#include "model/synthetic.h"

namespace rwkv {
namespace {

std::unique_ptr<Checkpoint> make(const std::string& preset, DType dt = DType::BF16, float sparsity = -1,
                                 uint64_t seed = 1, ThreadPool* pool = nullptr, double* achieved = nullptr) {
    SyntheticSpec spec;
    spec.preset = preset;
    spec.dtype = dt;
    spec.ffn_sparsity = sparsity;
    spec.seed = seed;
    return make_synthetic_checkpoint(spec, pool, achieved);
}

std::vector<float> floats(const TensorView& t) {
    std::vector<float> out(t.numel());
    convert_floats(t.data, t.dtype, out.data(), DType::F32, t.numel());
    return out;
}

// ---- presets

struct Released {
    const char* preset;
    int L, C, H, F, Dw, Da, Dv, Dg;
    double params_b;  // rwkv7.md §7 "Params", billions
};

TEST(SyntheticConfig, PresetsMatchTheReleasedShapes) {
    const Released table[] = {
        {"0.1b", 12, 768, 12, 3072, 64, 64, 32, 128, 0.191},    {"0.4b", 24, 1024, 16, 4096, 64, 64, 32, 128, 0.451},
        {"1.5b", 24, 2048, 32, 8192, 96, 96, 64, 256, 1.53},    {"2.9b", 32, 2560, 40, 10240, 96, 96, 64, 320, 2.95},
        {"7.2b", 32, 4096, 64, 16384, 128, 128, 96, 480, 7.20}, {"13.3b", 61, 4096, 64, 16384, 128, 128, 96, 480, 13.2},
    };
    for (const Released& r : table) {
        SCOPED_TRACE(r.preset);
        ModelConfig c = synthetic_config(r.preset);
        EXPECT_EQ(c.n_layer, r.L);
        EXPECT_EQ(c.n_embd, r.C);
        EXPECT_EQ(c.n_head, r.H);
        EXPECT_EQ(c.head_size, 64);
        EXPECT_EQ(c.n_ffn, r.F);
        EXPECT_EQ(c.n_ffn, 4 * c.n_embd);
        EXPECT_EQ(c.n_vocab, 65536);
        EXPECT_EQ(c.d_decay, r.Dw);
        EXPECT_EQ(c.d_aaa, r.Da);
        EXPECT_EQ(c.d_value, r.Dv);
        EXPECT_EQ(c.d_gate, r.Dg);
        const double params = double(checkpoint_param_count(c)) / 1e9;
        EXPECT_NEAR(params / r.params_b, 1.0, 0.01) << params << " B parameters";
    }
    ModelConfig tiny = synthetic_config("tiny");
    EXPECT_EQ(tiny.describe(), "L2 C128 H2 V256 F256 lora 16/16/8/32");
    EXPECT_EQ(synthetic_config("0.1B").n_embd, 768);  // case-insensitive
    EXPECT_EQ(synthetic_presets().size(), 7u);
}

TEST(SyntheticConfig, UnknownPresetListsTheKnownOnes) {
    try {
        synthetic_config("3b");
        FAIL() << "no exception";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), RWKV_STATUS_INVALID_ARGUMENT);
        EXPECT_NE(std::string(e.what()).find("'3b'"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("0.1b, 0.4b, 1.5b, 2.9b, 7.2b, 13.3b"), std::string::npos) << e.what();
    }
}

TEST(SyntheticCheckpoint, RejectsBadArguments) {
    for (float s : {1.0f, 0.995f, 2.0f, std::nanf("")}) {
        try {
            make("tiny", DType::BF16, s);
            FAIL() << "sparsity " << s << " accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.status(), RWKV_STATUS_INVALID_ARGUMENT) << e.what();
        }
    }
    EXPECT_NO_THROW(make("tiny", DType::BF16, 0.0f));
    EXPECT_NO_THROW(make("tiny", DType::BF16, 0.99f));
}

// ---- layout

TEST(SyntheticCheckpoint, HasTheNativeLayoutOfReleasedFiles) {
    auto ckpt = make("tiny");
    const ModelConfig c = synthetic_config("tiny");
    const int64_t C = c.n_embd;
    EXPECT_EQ(ckpt->path(), "synthetic:tiny");
    // emb; layer 0: 30 + ln0; layer 1: 30 + v0/v1/v2; ln_out, head
    EXPECT_EQ(ckpt->tensors().size(), size_t(1 + (30 + 2) + (30 + 3) + 3));
    for (const TensorView& t : ckpt->tensors()) EXPECT_EQ(t.dtype, DType::BF16) << t.name;
    EXPECT_EQ(ckpt->tensors().front().name, "emb.weight");
    EXPECT_EQ(ckpt->tensors().back().name, "head.weight");
    EXPECT_EQ(ckpt->find("emb.weight")->shape, (std::vector<int64_t>{256, C}));
    EXPECT_EQ(ckpt->find("blocks.0.att.x_r")->shape, (std::vector<int64_t>{1, 1, C}));
    EXPECT_EQ(ckpt->find("blocks.1.att.w0")->shape, (std::vector<int64_t>{1, 1, C}));
    EXPECT_EQ(ckpt->find("blocks.1.ffn.x_k")->shape, (std::vector<int64_t>{1, 1, C}));
    EXPECT_EQ(ckpt->find("blocks.0.att.r_k")->shape, (std::vector<int64_t>{2, 64}));
    EXPECT_EQ(ckpt->find("blocks.0.att.w1")->shape, (std::vector<int64_t>{C, 16}));
    EXPECT_EQ(ckpt->find("blocks.0.att.g2")->shape, (std::vector<int64_t>{32, C}));
    EXPECT_EQ(ckpt->find("blocks.1.att.v1")->shape, (std::vector<int64_t>{C, 8}));
    EXPECT_EQ(ckpt->find("blocks.1.ffn.key.weight")->shape, (std::vector<int64_t>{256, C}));
    EXPECT_EQ(ckpt->find("blocks.1.ffn.value.weight")->shape, (std::vector<int64_t>{C, 256}));
    EXPECT_EQ(ckpt->find("blocks.0.ln1.weight")->shape, (std::vector<int64_t>{C}));
    EXPECT_TRUE(ckpt->find("blocks.0.ln0.weight"));
    EXPECT_FALSE(ckpt->find("blocks.1.ln0.weight"));
    for (const char* v : {"v0", "v1", "v2"}) {
        EXPECT_FALSE(ckpt->find(std::string("blocks.0.att.") + v)) << v;
        EXPECT_TRUE(ckpt->find(std::string("blocks.1.att.") + v)) << v;
    }
    int64_t n = 0;
    for (const TensorView& t : ckpt->tensors()) n += t.numel();
    EXPECT_EQ(n, checkpoint_param_count(c));
}

TEST(SyntheticCheckpoint, LoadsAsAModel) {
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
        SCOPED_TRACE(dtype_name(dt));
        LoadedModel m = load_model(make("tiny", dt));
        EXPECT_EQ(m.config.describe(), synthetic_config("tiny").describe());
        EXPECT_EQ(m.naming, TensorNaming::Native);
        EXPECT_EQ(m.weight_dtype, dt);
        EXPECT_EQ(m.n_params, checkpoint_param_count(m.config));
    }
    ThreadPool pool(2);
    LoadedModel m = load_model(make("0.1b", DType::BF16, 0.9f, 1, &pool));
    EXPECT_EQ(m.config.describe(), synthetic_config("0.1b").describe());
    EXPECT_EQ(m.n_params, checkpoint_param_count(m.config));
}

TEST(SyntheticCheckpoint, VocabularyOverride) {
    SyntheticSpec spec;
    spec.preset = "tiny";
    spec.n_vocab = 1000;
    auto ckpt = make_synthetic_checkpoint(spec);
    EXPECT_EQ(ckpt->find("emb.weight")->shape[0], 1000);
    EXPECT_EQ(ckpt->find("head.weight")->shape[0], 1000);
    spec.n_vocab = 0;  // the preset's
    EXPECT_EQ(make_synthetic_checkpoint(spec)->find("emb.weight")->shape[0], 256);
}

// ---- determinism

bool same_bytes(const Checkpoint& a, const Checkpoint& b, const std::string& except = "") {
    if (a.tensors().size() != b.tensors().size()) return false;
    for (size_t i = 0; i < a.tensors().size(); i++) {
        const TensorView &x = a.tensors()[i], &y = b.tensors()[i];
        if (x.name != y.name || x.shape != y.shape || x.dtype != y.dtype) return false;
        if (x.name.find(except) != std::string::npos && !except.empty()) continue;
        if (std::memcmp(x.data, y.data, x.nbytes()) != 0) return false;
    }
    return true;
}

TEST(SyntheticCheckpoint, DeterministicForAnyThreadCount) {
    ThreadPool two(2), three(3);
    for (float sparsity : {-1.0f, 0.9f}) {
        auto a = make("tiny", DType::BF16, sparsity, 7, nullptr);
        auto b = make("tiny", DType::BF16, sparsity, 7, &two);
        auto c = make("tiny", DType::BF16, sparsity, 7, &three);
        EXPECT_TRUE(same_bytes(*a, *b));
        EXPECT_TRUE(same_bytes(*a, *c));
    }
    auto a = make("tiny", DType::F32, -1, 7);
    auto d = make("tiny", DType::F32, -1, 8);
    for (size_t i = 0; i < a->tensors().size(); i++) {
        const TensorView &x = a->tensors()[i], &y = d->tensors()[i];
        EXPECT_NE(std::memcmp(x.data, y.data, x.nbytes()), 0) << x.name << " does not depend on the seed";
    }
    // The sparsity target changes ffn.key only.
    auto s = make("tiny", DType::F32, 0.9f, 7);
    EXPECT_TRUE(same_bytes(*a, *s, "ffn.key"));
    EXPECT_FALSE(same_bytes(*a, *s));
}

TEST(SyntheticCheckpoint, DtypesHoldTheSameValuesRounded) {
    auto f32 = make("tiny", DType::F32), b16 = make("tiny", DType::BF16), f16 = make("tiny", DType::F16);
    for (size_t i = 0; i < f32->tensors().size(); i++) {
        const TensorView& t = f32->tensors()[i];
        std::vector<float> x = floats(t), b = floats(b16->tensors()[i]), h = floats(f16->tensors()[i]);
        for (size_t j = 0; j < x.size(); j++) {
            ASSERT_EQ(b[j], bf16_to_f32(f32_to_bf16(x[j]))) << t.name << "[" << j << "]";
            ASSERT_NEAR(h[j], x[j], std::abs(x[j]) * 1e-3 + 1e-7) << t.name << "[" << j << "]";
        }
    }
}

// ---- scales

double mean_of(const std::vector<float>& v) {
    double s = 0;
    for (float x : v) s += x;
    return s / double(v.size());
}
double std_of(const std::vector<float>& v) {
    const double m = mean_of(v);
    double s = 0;
    for (float x : v) s += (x - m) * (x - m);
    return std::sqrt(s / double(v.size()));
}

TEST(SyntheticCheckpoint, WeightsHaveRealisticScales) {
    ThreadPool pool(2);
    auto ckpt = make("0.1b", DType::F32, -1, 1, &pool);
    const double C = 768;
    auto stats = [&](const std::string& name) { return floats(*ckpt->find(name)); };
    std::vector<float> emb = stats("emb.weight");
    EXPECT_NEAR(mean_of(emb), 0, 0.01);
    EXPECT_NEAR(std_of(emb), 1, 0.01);
    for (const char* m : {"receptance", "key", "value", "output"}) {
        std::vector<float> w = stats(std::string("blocks.3.att.") + m + ".weight");
        EXPECT_NEAR(std_of(w) * std::sqrt(C), 1, 0.02) << m;
    }
    EXPECT_NEAR(std_of(stats("blocks.3.ffn.key.weight")) * std::sqrt(C), 1, 0.02);
    EXPECT_NEAR(std_of(stats("blocks.3.ffn.value.weight")) * std::sqrt(4 * C), 0.7, 0.02);
    std::vector<float> mu = stats("blocks.3.att.x_k");
    EXPECT_GT(*std::min_element(mu.begin(), mu.end()), 0.05f - 1e-6f);
    EXPECT_LT(*std::max_element(mu.begin(), mu.end()), 0.95f + 1e-6f);
    std::vector<float> w0 = stats("blocks.3.att.w0");
    EXPECT_NEAR(mean_of(w0), -1.75, 0.25);  // U(-6, 2.5) + N(0, 0.2²): decays from ~0.9985 to ~0.57
    std::vector<float> ln = stats("blocks.3.ln1.weight");
    EXPECT_NEAR(mean_of(ln), 1, 0.01);
    // Never zeros: the normals themselves are never 0; a sum (head) can cancel exactly once in a long while.
    for (const char* name : {"emb.weight", "head.weight", "blocks.5.ffn.key.weight", "blocks.5.att.w1"}) {
        std::vector<float> v = stats(name);
        EXPECT_LT(double(std::count(v.begin(), v.end(), 0.0f)), 1e-6 * double(v.size())) << name;
    }
    EXPECT_EQ(std::count(emb.begin(), emb.end(), 0.0f), 0);
}

// ---- the sparsity knob, measured in the forward pass

// Forwards every op to the CPU backend and counts the ReLU² pre-activations <= 0 (the input of the ReluSq epilogue).
class CountingBackend final : public Backend {
  public:
    explicit CountingBackend(Backend& inner) : in_(inner) {}
    const char* name() const override { return "counting"; }
    void embed(const EmbedArgs& a) override { in_.embed(a); }
    void layer_norm(const LayerNormArgs& a) override { in_.layer_norm(a); }
    void token_shift(const TokenShiftArgs& a) override { in_.token_shift(a); }
    void matmul(const MatmulArgs& a) override { in_.matmul(a); }
    void bias_act(const BiasActArgs& a) override {
        if (a.act == Activation::ReluSq) {
            double layer_nonpos = 0;
            for (int64_t i = 0; i < int64_t(a.T) * a.n; i++) layer_nonpos += a.y[i] <= 0.0f;
            nonpos += int64_t(layer_nonpos);
            total += int64_t(a.T) * a.n;
            per_layer.push_back(layer_nonpos / (double(a.T) * a.n));
        }
        in_.bias_act(a);
    }
    void key_prep(const KeyPrepArgs& a) override { in_.key_prep(a); }
    void wkv7(const Wkv7Args& a) override { in_.wkv7(a); }
    void time_mix_output(const TimeMixOutputArgs& a) override { in_.time_mix_output(a); }

    int64_t nonpos = 0, total = 0;
    std::vector<double> per_layer;

  private:
    Backend& in_;
};

struct ForwardResult {
    double sparsity;
    std::vector<double> per_layer;
    std::vector<float> last_logits;
};

// T tokens through the model in one sequence-mode call: sparsity over every token and layer.
ForwardResult run_forward(const LoadedModel& m, int T) {
    CpuBackend cpu(2, /*reference=*/false);
    CountingBackend be(cpu);
    Scratch s(m.config, T);
    RecurrentState state(m.config);
    std::vector<int32_t> tokens(T);
    for (int t = 0; t < T; t++) tokens[t] = int32_t((t * 7919 + 13) % m.config.n_vocab);
    std::vector<float> logits(m.config.n_vocab);
    RecurrentState* states[] = {&state};
    rwkv7_forward(m, be, s, states, 1, tokens.data(), T, LogitRows::Last, logits.data());
    return {double(be.nonpos) / double(be.total), be.per_layer, logits};
}

TEST(SyntheticSparsity, NaturalIsAboutHalf) {
    double achieved = -1;
    LoadedModel m = load_model(make("tiny", DType::BF16, -1, 1, nullptr, &achieved));
    EXPECT_NEAR(achieved, 0.5, 0.03);
    EXPECT_NEAR(run_forward(m, 64).sparsity, 0.5, 0.03);
}

TEST(SyntheticSparsity, TargetsAreMetInTheForwardPass) {
    ThreadPool pool(2);
    for (float target : {0.5f, 0.9f, 0.95f}) {
        for (const char* preset : {"tiny", "0.1b"}) {
            SCOPED_TRACE(std::string(preset) + " target " + std::to_string(target));
            double achieved = -1;
            LoadedModel m = load_model(make(preset, DType::BF16, target, 1, &pool, &achieved));
            EXPECT_NEAR(achieved, target, 0.01) << "held-out LN-like inputs";
            ForwardResult r = run_forward(m, preset == std::string("tiny") ? 64 : 24);
            EXPECT_NEAR(r.sparsity, target, 0.03) << "forward";
            for (size_t l = 0; l < r.per_layer.size(); l++) EXPECT_NEAR(r.per_layer[l], target, 0.05) << "layer " << l;
        }
    }
}

TEST(SyntheticSparsity, ExtremeTargets) {
    for (float target : {0.0f, 0.2f, 0.99f}) {
        double achieved = -1;
        LoadedModel m = load_model(make("tiny", DType::F32, target, 3, nullptr, &achieved));
        EXPECT_NEAR(achieved, target, 0.01) << target;
        EXPECT_NEAR(run_forward(m, 64).sparsity, target, 0.03) << target;
    }
}

// ---- behaviour

TEST(SyntheticModel, LogitsAreFiniteWithASpreadOfAFewUnits) {
    for (float sparsity : {-1.0f, 0.9f}) {
        LoadedModel m = load_model(make("tiny", DType::BF16, sparsity));
        ForwardResult r = run_forward(m, 16);
        for (float x : r.last_logits) ASSERT_TRUE(std::isfinite(x));
        const double sd = std_of(r.last_logits);
        const auto [lo, hi] = std::minmax_element(r.last_logits.begin(), r.last_logits.end());
        EXPECT_GT(sd, 0.5);
        EXPECT_LT(sd, 4.0);
        EXPECT_GT(*hi - *lo, 3.0);
        EXPECT_LT(*hi - *lo, 30.0);
    }
}

// ---- dtype conversion

TEST(ConvertFloats, HalfRoundTripsAndRoundsToNearestEven) {
    std::vector<uint16_t> all(65536), back(65536);
    for (int i = 0; i < 65536; i++) all[i] = uint16_t(i);
    std::vector<float> f(65536);
    convert_floats(all.data(), DType::F16, f.data(), DType::F32, 65536);
    convert_floats(f.data(), DType::F32, back.data(), DType::F16, 65536);
    for (int i = 0; i < 65536; i++) {
        if (std::isnan(f[i])) {
            EXPECT_TRUE(std::isnan(f16_to_f32(back[i])));
            continue;
        }
        ASSERT_EQ(back[i], all[i]) << i;
    }
    // Ties between neighbours go to the even one; past the largest half, to infinity.
    const float cases[] = {1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048,   65504.0f, 65519.0f, 65520.0f, 1e-8f,
                           2.9802322e-8f,      5.9604645e-8f * 1.5f, -0.0f};
    const uint16_t want[] = {0x3c00, 0x3c02, 0x7bff, 0x7bff, 0x7c00, 0x0000, 0x0000, 0x0002, 0x8000};
    uint16_t got[9];
    convert_floats(cases, DType::F32, got, DType::F16, 9);
    for (int i = 0; i < 9; i++) EXPECT_EQ(got[i], want[i]) << cases[i];
    // bf16 <-> f16 goes through f32.
    const float x[] = {0.1f, -3.5f};
    uint16_t b[2], h[2];
    convert_floats(x, DType::F32, b, DType::BF16, 2);
    convert_floats(b, DType::BF16, h, DType::F16, 2);
    EXPECT_EQ(f16_to_f32(h[0]), bf16_to_f32(b[0]));
    EXPECT_EQ(f16_to_f32(h[1]), -3.5f);
}

}  // namespace
}  // namespace rwkv
