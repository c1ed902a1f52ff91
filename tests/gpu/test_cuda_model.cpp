// The whole model on CUDA against the CPU backend, through the public API: the committed fixtures
// (tests/fixtures/tiny-*.pth) and a synthetic model of the 0.1B shape (docs/synthetic.md). Both backends run the
// same fp16-rounded weights (weight_dtype F16: the CPU converts on the host, CUDA on the device, both round to
// nearest even), so what differs is the arithmetic: fp32 everywhere on the CPU; on CUDA fp32 GEMVs for up to
// kMaxGemvT rows and cuBLAS with fp16 activations above (docs/cuda.md §Precision).
//
// Tolerances: max |logit error| <= 1e-2 of the logit scale (max |CPU logit|) at every position; top-1 agreement
// wherever the CPU's top-1/top-2 margin exceeds 1e-2 of the scale; the same 32-token greedy continuation.
// Graph replay vs plain launches and T one-token steps vs ... are compared bit for bit where the kernels promise it.
//
// Label gpu; every test skips with a visible message when no CUDA device is present.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/device.h"
#include "common/error.h"
#include "rwkv/rwkv.hpp"
#include "testutil/testutil.h"

using rwkv::test::fixture;

namespace {

#define SKIP_WITHOUT_GPU()                                                                                 \
    do {                                                                                                   \
        if (rwkv::cuda_device_count() == 0)                                                                \
            GTEST_SKIP() << "no CUDA device (" << (rwkv::cuda_compiled() ? "CUDA compiled in" : "no CUDA") \
                         << "): the CUDA model tests did not run";                                         \
    } while (0)

constexpr double kRelTolerance = 1e-2;

std::vector<int32_t> fixture_tokens() {
    std::ifstream f(fixture("tiny-tokens.json"));
    return nlohmann::json::parse(f)["tokens"].get<std::vector<int32_t>>();
}

rwkv_model_params params(rwkv_backend backend) {
    rwkv_model_params p = rwkv_model_default_params();
    p.backend = backend;
    p.weight_dtype = RWKV_DTYPE_F16;
    p.n_threads = 0;
    return p;
}

std::unique_ptr<rwkv_model, rwkv::ModelDeleter> synthetic(rwkv_backend backend, const char* preset = "0.1b") {
    rwkv_synthetic_params sp = rwkv_synthetic_default_params();
    sp.preset = preset;
    sp.ffn_sparsity = 0.9f;
    rwkv_model_params p = params(backend);
    rwkv_model* m = nullptr;
    rwkv::check(rwkv_model_load_synthetic(&sp, &p, &m));
    return std::unique_ptr<rwkv_model, rwkv::ModelDeleter>(m);
}

std::unique_ptr<rwkv_model, rwkv::ModelDeleter> from_file(const std::string& path, rwkv_backend backend) {
    rwkv_model_params p = params(backend);
    rwkv_model* m = nullptr;
    rwkv::check(rwkv_model_load(path.c_str(), &p, &m));
    return std::unique_ptr<rwkv_model, rwkv::ModelDeleter>(m);
}

struct Runner {  // a context and a state on one model
    explicit Runner(const rwkv_model* m, int max_seq_tokens = 256) : model(m) {
        rwkv_context_params cp = rwkv_context_default_params();
        cp.max_seq_tokens = max_seq_tokens;
        rwkv::check(rwkv_context_init(m, &cp, &ctx));
        rwkv::check(rwkv_state_init(m, &state));
        rwkv_model_info info;
        rwkv::check(rwkv_model_get_info(m, &info));
        V = size_t(info.n_vocab);
    }
    ~Runner() {
        rwkv_state_free(state);
        rwkv_context_free(ctx);
    }
    std::vector<float> eval_all(const std::vector<int32_t>& t) {
        std::vector<float> out(t.size() * V);
        rwkv::check(rwkv_eval(ctx, state, t.data(), t.size(), RWKV_LOGITS_ALL, out.data(), out.size()));
        return out;
    }
    std::vector<float> decode_each(const std::vector<int32_t>& t) {
        std::vector<float> out(t.size() * V);
        for (size_t i = 0; i < t.size(); i++) rwkv::check(rwkv_decode(ctx, state, t[i], out.data() + i * V, V));
        return out;
    }
    std::vector<float> state_data() const {
        std::vector<float> d(rwkv_state_size(state));
        rwkv::check(rwkv_state_get_data(state, d.data(), d.size()));
        return d;
    }
    const rwkv_model* model;
    rwkv_context* ctx = nullptr;
    rwkv_state* state = nullptr;
    size_t V = 0;
};

// Every row within kRelTolerance of the reference's scale; top-1 agrees where the reference's margin is clear.
void expect_logits_close(const std::vector<float>& got, const std::vector<float>& ref, size_t V,
                         const std::string& what) {
    ASSERT_EQ(got.size(), ref.size()) << what;
    for (float v : got) ASSERT_TRUE(std::isfinite(v)) << what << ": a non-finite logit";
    const double scale = rwkv::test::compare(ref.data(), ref.data(), ref.size()).max_abs_ref;
    ASSERT_GT(scale, 0.0) << what;
    int clear = 0, agree = 0;
    for (size_t r = 0; r < ref.size() / V; r++) {
        const float* g = got.data() + r * V;
        const float* f = ref.data() + r * V;
        const rwkv::test::ErrorStats e = rwkv::test::compare(g, f, V);
        EXPECT_LE(e.max_abs_err, kRelTolerance * scale) << what << " row " << r << ": scale " << scale;
        std::vector<size_t> order(V);
        for (size_t i = 0; i < V; i++) order[i] = i;
        std::partial_sort(order.begin(), order.begin() + 2, order.end(),
                          [&](size_t a, size_t b) { return f[a] > f[b]; });
        if (f[order[0]] - f[order[1]] > kRelTolerance * scale) {
            clear++;
            agree += size_t(std::max_element(g, g + V) - g) == order[0];
        }
    }
    EXPECT_EQ(agree, clear) << what << ": top-1 disagreements among rows with a clear margin";
}

void expect_state_close(const std::vector<float>& got, const std::vector<float>& ref, const std::string& what) {
    ASSERT_EQ(got.size(), ref.size());
    const rwkv::test::ErrorStats e = rwkv::test::compare(got.data(), ref.data(), ref.size());
    EXPECT_LE(e.max_abs_err, kRelTolerance * std::max(1.0, e.max_abs_ref)) << what << ": state";
}

std::vector<int32_t> greedy(const rwkv_model* m, const std::vector<int32_t>& prompt, int n) {
    Runner r(m);
    rwkv_sampler_params sp = rwkv_sampler_default_params();
    sp.temperature = 0.0f;
    sp.presence_penalty = sp.frequency_penalty = 0.0f;
    rwkv_sampler* s = nullptr;
    rwkv::check(rwkv_sampler_init(&sp, int(r.V), &s));
    rwkv_generate_params gp = rwkv_generate_default_params();
    gp.max_tokens = n;
    gp.n_stop_tokens = 0;
    std::vector<int32_t> out;
    auto cb = [](int32_t tok, const char*, size_t, void* user) {
        if (tok >= 0) static_cast<std::vector<int32_t>*>(user)->push_back(tok);
        return 0;
    };
    rwkv_status st = rwkv_generate(r.ctx, r.state, nullptr, s, prompt.data(), prompt.size(), &gp, cb, &out, nullptr);
    rwkv_sampler_free(s);
    rwkv::check(st);
    return out;
}

class CudaFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(CudaFixture, LogitsAndStateMatchTheCpu) {
    SKIP_WITHOUT_GPU();
    auto cpu = from_file(fixture(GetParam()), RWKV_BACKEND_CPU);
    auto gpu = from_file(fixture(GetParam()), RWKV_BACKEND_CUDA);
    const std::vector<int32_t> tokens = fixture_tokens();
    Runner c(cpu.get()), g_seq(gpu.get()), g_rnn(gpu.get());
    const std::vector<float> ref = c.eval_all(tokens);
    expect_logits_close(g_seq.eval_all(tokens), ref, c.V, std::string(GetParam()) + " prefill");
    expect_state_close(g_seq.state_data(), c.state_data(), std::string(GetParam()) + " prefill");
    expect_logits_close(g_rnn.decode_each(tokens), ref, c.V, std::string(GetParam()) + " token by token");
    expect_state_close(g_rnn.state_data(), c.state_data(), std::string(GetParam()) + " token by token");
}

TEST_P(CudaFixture, GreedyContinuationMatchesTheCpu) {
    SKIP_WITHOUT_GPU();
    auto cpu = from_file(fixture(GetParam()), RWKV_BACKEND_CPU);
    auto gpu = from_file(fixture(GetParam()), RWKV_BACKEND_CUDA);
    const std::vector<int32_t> tokens = fixture_tokens();
    EXPECT_EQ(greedy(gpu.get(), tokens, 32), greedy(cpu.get(), tokens, 32));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaFixture, ::testing::Values("tiny-f32.pth", "tiny-f16.pth", "tiny-bf16.pth"));

// ---- the 0.1B shape (L12 C768 F3072 V65536), FFN sparsity 0.9

std::vector<int32_t> synthetic_prompt(int n) {
    std::vector<int32_t> t(n);
    for (int i = 0; i < n; i++) t[i] = int32_t((i * 7919 + 13) % 65536);
    return t;
}

TEST(CudaSynthetic, LogitsMatchTheCpu) {
    SKIP_WITHOUT_GPU();
    auto cpu = synthetic(RWKV_BACKEND_CPU);
    auto gpu = synthetic(RWKV_BACKEND_CUDA);
    const std::vector<int32_t> tokens = synthetic_prompt(24);
    Runner c(cpu.get()), g_seq(gpu.get()), g_rnn(gpu.get());
    const std::vector<float> ref = c.eval_all(tokens);
    expect_logits_close(g_seq.eval_all(tokens), ref, c.V, "0.1b prefill");
    expect_logits_close(g_rnn.decode_each(tokens), ref, c.V, "0.1b token by token");
    expect_state_close(g_rnn.state_data(), c.state_data(), "0.1b token by token");
}

TEST(CudaSynthetic, GreedyContinuationMatchesTheCpu) {
    SKIP_WITHOUT_GPU();
    auto cpu = synthetic(RWKV_BACKEND_CPU);
    auto gpu = synthetic(RWKV_BACKEND_CUDA);
    const std::vector<int32_t> prompt = synthetic_prompt(16);
    EXPECT_EQ(greedy(gpu.get(), prompt, 32), greedy(cpu.get(), prompt, 32));
}

// Graph replay and plain launches run the same kernels with the same shapes: bit for bit.
TEST(CudaSynthetic, GraphReplayEqualsPlainLaunchesBitwise) {
    SKIP_WITHOUT_GPU();
    auto gpu = synthetic(RWKV_BACKEND_CUDA);
    const std::vector<int32_t> tokens = synthetic_prompt(12);
    setenv("RWKV_CUDA_GRAPHS", "0", 1);
    Runner plain(gpu.get());
    unsetenv("RWKV_CUDA_GRAPHS");
    Runner graph(gpu.get());
    rwkv_memory_info mp, mg;
    rwkv::check(rwkv_context_get_memory(plain.ctx, &mp));
    EXPECT_EQ(mp.cuda_graphs, 0);
    const std::vector<float> a = plain.decode_each(tokens), b = graph.decode_each(tokens);
    rwkv::check(rwkv_context_get_memory(graph.ctx, &mg));
    EXPECT_EQ(mg.cuda_graphs, 1) << "the graph capture failed (see the warning above)";
    EXPECT_EQ(a, b);
    EXPECT_EQ(plain.state_data(), graph.state_data());
    // Batched decode replays a graph per batch size too.
    std::vector<rwkv_state*> sp, sg;
    for (int i = 0; i < 3; i++) {
        rwkv_state* x = nullptr;
        rwkv::check(rwkv_state_init(gpu.get(), &x));
        sp.push_back(x);
        rwkv::check(rwkv_state_init(gpu.get(), &x));
        sg.push_back(x);
    }
    std::vector<float> la(3 * plain.V), lb(3 * plain.V);
    for (int step = 0; step < 4; step++) {
        const int32_t t[3] = {int32_t(step + 1), int32_t(100 + step), int32_t(60000 - step)};
        rwkv::check(rwkv_decode_batch(plain.ctx, sp.data(), t, 3, la.data(), la.size()));
        rwkv::check(rwkv_decode_batch(graph.ctx, sg.data(), t, 3, lb.data(), lb.size()));
        EXPECT_EQ(la, lb) << "batched step " << step;
    }
    for (rwkv_state* x : sp) rwkv_state_free(x);
    for (rwkv_state* x : sg) rwkv_state_free(x);
}

// Batched decode (B rows through GEMV up to kMaxGemvT, cuBLAS above) against one sequence at a time.
TEST(CudaSynthetic, BatchedDecodeMatchesSingle) {
    SKIP_WITHOUT_GPU();
    auto gpu = synthetic(RWKV_BACKEND_CUDA);
    for (int B : {2, 8, 17}) {
        Runner single(gpu.get()), batched(gpu.get());
        std::vector<rwkv_state*> states(B), singles(B);
        for (int b = 0; b < B; b++) {
            rwkv::check(rwkv_state_init(gpu.get(), &states[b]));
            rwkv::check(rwkv_state_init(gpu.get(), &singles[b]));
        }
        std::vector<float> lb(size_t(B) * batched.V), ls(size_t(B) * single.V);
        for (int step = 0; step < 3; step++) {
            std::vector<int32_t> t(B);
            for (int b = 0; b < B; b++) t[b] = int32_t((b * 977 + step * 31 + 5) % 65536);
            rwkv::check(rwkv_decode_batch(batched.ctx, states.data(), t.data(), B, lb.data(), lb.size()));
            for (int b = 0; b < B; b++)
                rwkv::check(rwkv_decode(single.ctx, singles[b], t[b], ls.data() + size_t(b) * single.V, single.V));
            expect_logits_close(lb, ls, single.V, "B=" + std::to_string(B) + " step " + std::to_string(step));
        }
        for (int b = 0; b < B; b++) {
            rwkv_state_free(states[b]);
            rwkv_state_free(singles[b]);
        }
    }
}

// Prefill (cuBLAS above kMaxGemvT rows) against token by token (GEMV), and a prefill chunked by the context.
TEST(CudaSynthetic, PrefillMatchesTokenByToken) {
    SKIP_WITHOUT_GPU();
    auto gpu = synthetic(RWKV_BACKEND_CUDA);
    const std::vector<int32_t> tokens = synthetic_prompt(40);
    Runner seq(gpu.get()), rnn(gpu.get()), chunked(gpu.get(), 16);
    const std::vector<float> r = rnn.decode_each(tokens);
    expect_logits_close(seq.eval_all(tokens), r, rnn.V, "prefill vs token by token");
    expect_state_close(seq.state_data(), rnn.state_data(), "prefill vs token by token");
    expect_logits_close(chunked.eval_all(tokens), r, rnn.V, "chunked prefill vs token by token");
}

// States live on the device; get/set/save/load/serialize/copy keep the host file format.
TEST(CudaSynthetic, StateRoundTripsThroughTheHost) {
    SKIP_WITHOUT_GPU();
    auto gpu = synthetic(RWKV_BACKEND_CUDA, "tiny");
    auto cpu = synthetic(RWKV_BACKEND_CPU, "tiny");
    Runner g(gpu.get()), c(cpu.get());
    const std::vector<int32_t> tokens = {1, 2, 3, 4, 5};
    g.decode_each(tokens);
    const std::vector<float> before = g.state_data();
    const std::string path = rwkv::test::temp_path("cuda.state");
    rwkv::check(rwkv_state_save(g.state, path.c_str()));
    rwkv::check(rwkv_state_reset(g.state));
    for (float v : g.state_data()) ASSERT_EQ(v, 0.0f);
    rwkv::check(rwkv_state_load(g.state, path.c_str()));
    EXPECT_EQ(g.state_data(), before);
    // A CPU state of the same shape reads the same file and serialises to the same bytes.
    rwkv::check(rwkv_state_load(c.state, path.c_str()));
    EXPECT_EQ(c.state_data(), before);
    size_t n = 0, m = 0;
    rwkv::check(rwkv_state_serialize(g.state, nullptr, 0, &n));
    std::vector<uint8_t> bg(n), bc(n);
    rwkv::check(rwkv_state_serialize(g.state, bg.data(), n, &n));
    rwkv::check(rwkv_state_serialize(c.state, bc.data(), n, &m));
    EXPECT_EQ(bg, bc);
    // Copies host <-> device.
    rwkv::check(rwkv_state_reset(c.state));
    rwkv::check(rwkv_state_copy(c.state, g.state));
    EXPECT_EQ(c.state_data(), before);
    // A CPU state is refused by a CUDA context, with a message that says why.
    float logits[1];
    EXPECT_EQ(rwkv_decode(g.ctx, c.state, 1, nullptr, 0), RWKV_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(rwkv_last_error_message()).find("host memory"), std::string::npos)
        << rwkv_last_error_message();
    (void)logits;
}

TEST(CudaSynthetic, MemoryIsReported) {
    SKIP_WITHOUT_GPU();
    auto gpu = synthetic(RWKV_BACKEND_CUDA);
    Runner r(gpu.get());
    rwkv_memory_info m;
    rwkv::check(rwkv_context_get_memory(r.ctx, &m));
    EXPECT_EQ(m.backend, RWKV_BACKEND_CUDA);
    EXPECT_EQ(m.device, 0);
    EXPECT_GT(std::string(m.device_name).size(), 0u);
    EXPECT_EQ(m.weight_dtype, RWKV_DTYPE_F16);
    EXPECT_GT(m.weight_bytes, 100'000'000);  // ~0.1B parameters in f16 plus the f32 embedding
    EXPECT_GT(m.scratch_bytes, 0);
    EXPECT_EQ(m.state_bytes, int64_t(rwkv_state_size(r.state)) * 4);
    EXPECT_GT(m.device_total_bytes, m.device_free_bytes);
}

TEST(CudaMemory, AllocationFailureIsAnOutOfMemoryStatusNamingTheSize) {
    SKIP_WITHOUT_GPU();
    try {
        rwkv::Buffer b(rwkv::MemoryKind::Cuda, 0, size_t(1) << 50, "a test buffer");
        FAIL() << "a 1 PiB allocation succeeded";
    } catch (const rwkv::Error& e) {
        EXPECT_EQ(e.status(), RWKV_STATUS_OUT_OF_MEMORY);
        EXPECT_NE(std::string(e.what()).find("out of memory allocating"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("a test buffer"), std::string::npos) << e.what();
    }
    // The device still works afterwards.
    auto gpu = synthetic(RWKV_BACKEND_CUDA, "tiny");
    Runner r(gpu.get());
    EXPECT_EQ(r.decode_each({1, 2}).size(), 2 * r.V);
}

TEST(CudaBackendSelection, AutoPicksCudaAndTheEnvironmentOverridesIt) {
    SKIP_WITHOUT_GPU();
    rwkv_model_params p = rwkv_model_default_params();
    rwkv_model_info info;
    rwkv_model* m = nullptr;
    rwkv::check(rwkv_model_load(fixture("tiny-f32.pth").c_str(), &p, &m));
    rwkv::check(rwkv_model_get_info(m, &info));
    EXPECT_EQ(info.backend, RWKV_BACKEND_CUDA);
    rwkv_model_free(m);
    setenv("RWKV_BACKEND", "cpu", 1);
    rwkv::check(rwkv_model_load(fixture("tiny-f32.pth").c_str(), &p, &m));
    unsetenv("RWKV_BACKEND");
    rwkv::check(rwkv_model_get_info(m, &info));
    EXPECT_EQ(info.backend, RWKV_BACKEND_CPU);
    rwkv_model_free(m);
}

}  // namespace
