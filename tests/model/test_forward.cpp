// The CPU forward pass against the golden fixtures of tools/reference (fp64 NumPy reference), through the public
// API. Tolerance (docs/fixtures.md): max |logit error| <= 1e-4 * max |logit| at every position; the engine runs
// fp32 arithmetic on the same (possibly bf16/fp16-rounded) weights the reference used.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "rwkv/rwkv.hpp"
#include "testutil/testutil.h"

using rwkv::test::fixture;

namespace {

std::vector<int32_t> fixture_tokens() {
    std::ifstream f(fixture("tiny-tokens.json"));
    nlohmann::json j = nlohmann::json::parse(f);
    return j["tokens"].get<std::vector<int32_t>>();
}

void expect_close(const std::vector<float>& got, const rwkv::test::NpyArray& ref, double rel, const std::string& what) {
    ASSERT_EQ(got.size(), ref.data.size()) << what;
    for (float v : got) ASSERT_TRUE(std::isfinite(v)) << what;
    rwkv::test::ErrorStats s = rwkv::test::compare(got.data(), ref.data.data(), got.size());
    ASSERT_GT(s.max_abs_ref, 0.0) << what;
    EXPECT_LE(s.max_abs_err, rel * s.max_abs_ref)
        << what << ": max abs err " << s.max_abs_err << ", scale " << s.max_abs_ref;
}

// Every row (position) checked separately against the scale of the whole array.
void expect_rows_close(const std::vector<float>& got, const rwkv::test::NpyArray& ref, double rel,
                       const std::string& what) {
    ASSERT_EQ(ref.shape.size(), 2u);
    const size_t T = ref.shape[0], V = ref.shape[1];
    ASSERT_EQ(got.size(), T * V);
    double scale = rwkv::test::compare(ref.data.data(), ref.data.data(), ref.data.size()).max_abs_ref;
    for (size_t t = 0; t < T; t++) {
        rwkv::test::ErrorStats s = rwkv::test::compare(got.data() + t * V, ref.data.data() + t * V, V);
        EXPECT_LE(s.max_abs_err, rel * scale) << what << " position " << t;
    }
}

rwkv_model_params cpu_params(int threads = 2) {
    rwkv_model_params p = rwkv_model_default_params();
    p.backend = RWKV_BACKEND_CPU;
    p.n_threads = threads;
    return p;
}

struct Case {
    const char* file;
    const char* golden;  // prefix of the golden .npy files
};

class GoldenTest : public ::testing::TestWithParam<Case> {};

TEST_P(GoldenTest, LogitsAndStateMatchReferenceInBothModes) {
    const Case c = GetParam();
    rwkv::Model model(fixture(c.file), cpu_params());
    rwkv::Context ctx(model);
    const std::vector<int32_t> tokens = fixture_tokens();
    auto ref_logits = rwkv::test::read_npy(fixture(std::string(c.golden) + "-logits.npy"));
    auto ref_state = rwkv::test::read_npy(fixture(std::string(c.golden) + "-state.npy"));

    rwkv::State seq(model);
    std::vector<float> seq_logits = ctx.eval_all(seq, tokens);
    expect_rows_close(seq_logits, ref_logits, 1e-4, std::string(c.file) + " seq");
    expect_close(seq.data(), ref_state, 1e-4, std::string(c.file) + " seq state");

    rwkv::State rnn(model);
    std::vector<float> rnn_logits;
    for (int32_t t : tokens) {
        std::vector<float> row = ctx.decode(rnn, t);
        rnn_logits.insert(rnn_logits.end(), row.begin(), row.end());
    }
    expect_rows_close(rnn_logits, ref_logits, 1e-4, std::string(c.file) + " rnn");
    // Same kernels in both modes: prefill and token-by-token agree bit for bit.
    EXPECT_EQ(rnn_logits, seq_logits);
    EXPECT_EQ(rnn.data(), seq.data());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenTest,
                         ::testing::Values(Case{"tiny-f32.pth", "tiny-f32"}, Case{"tiny-bf16.pth", "tiny-bf16"},
                                           Case{"tiny-f16.pth", "tiny-f16"}, Case{"tiny-bf16.safetensors", "tiny-bf16"},
                                           Case{"tiny-bf16-hf.safetensors", "tiny-bf16"}),
                         [](const auto& test_info) {  // not `info`: gtest's macro has a parameter of that name
                             std::string s = test_info.param.file;
                             for (char& ch : s)
                                 if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return s;
                         });

TEST(Forward, HuggingFaceNamesGiveTheSameLogitsAsNative) {
    const std::vector<int32_t> tokens = fixture_tokens();
    rwkv::Model native(fixture("tiny-bf16.pth"), cpu_params());
    rwkv::Model hf(fixture("tiny-bf16-hf.safetensors"), cpu_params());
    rwkv::Context cn(native), ch(hf);
    rwkv::State sn(native), sh(hf);
    std::vector<float> ln = cn.eval_all(sn, tokens), lh = ch.eval_all(sh, tokens);
    rwkv::test::ErrorStats s = rwkv::test::compare(lh.data(), ln.data(), ln.size());
    // LoRA matrices are read transposed in HF files, so the summation order differs: equal to fp32 rounding.
    EXPECT_LE(s.max_abs_err, 1e-5 * s.max_abs_ref);
}

TEST(Forward, OneAndManyThreadsAreBitwiseIdentical) {
    const std::vector<int32_t> tokens = fixture_tokens();
    std::vector<float> out[2];
    for (int i = 0; i < 2; i++) {
        rwkv::Model model(fixture("tiny-bf16.pth"), cpu_params(i == 0 ? 1 : 3));
        rwkv::Context ctx(model);
        rwkv::State st(model);
        out[i] = ctx.eval_all(st, tokens);
    }
    EXPECT_EQ(out[0], out[1]);
}

TEST(Forward, ChunkedPrefillEqualsOnePass) {
    const std::vector<int32_t> tokens = fixture_tokens();
    rwkv::Model model(fixture("tiny-f32.pth"), cpu_params());
    rwkv_context_params small = rwkv_context_default_params();
    small.max_seq_tokens = 5;  // 24 tokens in chunks of 5
    rwkv::Context whole(model), chunked(model, small);
    rwkv::State a(model), b(model);
    EXPECT_EQ(whole.eval_all(a, tokens), chunked.eval_all(b, tokens));
    EXPECT_EQ(a.data(), b.data());
}

TEST(Forward, StateTuningFileIsApplied) {
    rwkv::Model model(fixture("tiny-f32.pth"), cpu_params());
    rwkv::Context ctx(model);
    rwkv::State st(model);
    st.load_tuning(fixture("tiny-state.pth"));
    auto ref_logits = rwkv::test::read_npy(fixture("tiny-f32-tuned-logits.npy"));
    auto ref_state = rwkv::test::read_npy(fixture("tiny-f32-tuned-state.npy"));
    expect_rows_close(ctx.eval_all(st, fixture_tokens()), ref_logits, 1e-4, "tuned");
    expect_close(st.data(), ref_state, 1e-4, "tuned state");
}

TEST(Forward, SavedStateContinuesBitExactly) {
    const std::vector<int32_t> tokens = fixture_tokens();
    const std::vector<int32_t> head(tokens.begin(), tokens.begin() + 10), tail(tokens.begin() + 10, tokens.end());
    rwkv::Model model(fixture("tiny-bf16.pth"), cpu_params());
    rwkv::Context ctx(model);
    rwkv::State st(model);
    ctx.eval(st, head);
    const std::string path = rwkv::test::temp_path("mid.state");
    st.save(path);
    std::vector<float> expected = ctx.eval_all(st, tail);

    rwkv::State restored(model);
    restored.load(path);
    EXPECT_EQ(ctx.eval_all(restored, tail), expected);

    // Branching: a copy evolves independently of its source.
    rwkv::State src(model), branch(model);
    src.load(path);
    branch.copy_from(src);
    ctx.eval(branch, {1, 2, 3});
    EXPECT_EQ(ctx.eval_all(src, tail), expected);
}

TEST(Forward, ResetGivesTheZeroState) {
    rwkv::Model model(fixture("tiny-f32.pth"), cpu_params());
    rwkv::Context ctx(model);
    rwkv::State st(model);
    ctx.eval(st, {5, 6, 7});
    st.reset();
    for (float v : st.data()) ASSERT_EQ(v, 0.0f);
}

TEST(Forward, TokenOutOfRangeIsRefusedAndStateUntouched) {
    rwkv::Model model(fixture("tiny-f32.pth"), cpu_params());
    rwkv::Context ctx(model);
    rwkv::State st(model);
    ctx.eval(st, {1, 2});
    const std::vector<float> before = st.data();
    const int V = model.info().n_vocab;
    std::vector<int32_t> bad = {3, V};
    std::vector<float> logits(V);
    EXPECT_EQ(rwkv_eval(ctx.get(), st.get(), bad.data(), bad.size(), RWKV_LOGITS_LAST, logits.data(), logits.size()),
              RWKV_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(rwkv_last_error_message()).find("token id " + std::to_string(V) + " at position 1"),
              std::string::npos);
    EXPECT_EQ(st.data(), before);
    EXPECT_EQ(rwkv_decode(ctx.get(), st.get(), -1, nullptr, 0), RWKV_STATUS_INVALID_ARGUMENT);
}

}  // namespace

namespace {

TEST(Forward, BatchedDecodeEqualsSingleDecodes) {
    rwkv::Model model(fixture("tiny-bf16.pth"), cpu_params());
    rwkv::Context ctx(model);
    const std::vector<int32_t> tokens = fixture_tokens();
    const int B = 3, V = model.info().n_vocab;
    // Three sequences with different histories, then one token each in one batched step.
    std::vector<std::unique_ptr<rwkv::State>> batch, single;
    for (int b = 0; b < B; b++) {
        batch.push_back(std::make_unique<rwkv::State>(model));
        single.push_back(std::make_unique<rwkv::State>(model));
        std::vector<int32_t> history(tokens.begin(), tokens.begin() + 4 + 5 * b);
        ctx.eval(*batch[b], history);
        ctx.eval(*single[b], history);
    }
    std::vector<rwkv_state*> handles;
    for (auto& s : batch) handles.push_back(s->get());
    const std::vector<int32_t> next = {7, 200, 7};
    for (int step = 0; step < 3; step++) {
        std::vector<float> logits(size_t(B) * V);
        ASSERT_EQ(rwkv_decode_batch(ctx.get(), handles.data(), next.data(), B, logits.data(), logits.size()),
                  RWKV_STATUS_OK)
            << rwkv_last_error_message();
        for (int b = 0; b < B; b++) {
            std::vector<float> one = ctx.decode(*single[b], next[b]);
            // Every op is per row with a fixed order, so batching changes nothing, not even rounding.
            EXPECT_TRUE(std::equal(one.begin(), one.end(), logits.begin() + size_t(b) * V)) << "seq " << b;
            EXPECT_EQ(batch[b]->data(), single[b]->data()) << "seq " << b;
        }
    }
    // The same state twice is refused before anything changes.
    std::vector<rwkv_state*> twice = {handles[0], handles[0]};
    const std::vector<float> before = batch[0]->data();
    EXPECT_EQ(rwkv_decode_batch(ctx.get(), twice.data(), next.data(), 2, nullptr, 0), RWKV_STATUS_INVALID_ARGUMENT);
    EXPECT_EQ(batch[0]->data(), before);
}

}  // namespace

namespace {

// The vectorised CPU path against the plain reference kernels (RWKV_CPU_REFERENCE=1), on every fixture: within the
// golden tolerance, and both within it of the fp64 reference.
TEST(Forward, FastPathMatchesReferencePath) {
    const std::vector<int32_t> tokens = fixture_tokens();
    for (const char* file : {"tiny-f32.pth", "tiny-bf16.pth", "tiny-f16.pth", "tiny-bf16-hf.safetensors"}) {
        rwkv::Model model(fixture(file), cpu_params());
        std::vector<float> out[2];
        for (int reference = 0; reference < 2; reference++) {
            if (reference) setenv("RWKV_CPU_REFERENCE", "1", 1);
            rwkv::Context ctx(model);
            unsetenv("RWKV_CPU_REFERENCE");
            rwkv::State st(model);
            out[reference] = ctx.eval_all(st, tokens);
        }
        rwkv::test::ErrorStats s = rwkv::test::compare(out[0].data(), out[1].data(), out[0].size());
        EXPECT_LE(s.max_abs_err, 1e-4 * s.max_abs_ref) << file;
    }
}

}  // namespace
