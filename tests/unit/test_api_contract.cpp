// The C API's contract (include/rwkv/rwkv.h, docs/api.md), through the public header only:
//   - NULL and invalid arguments return RWKV_STATUS_INVALID_ARGUMENT with a message naming the function, never
//     crash, and leave out-handles NULL;
//   - every *_free(NULL) is a no-op, twice too;
//   - every status code has a string;
//   - the last-error message is per thread: errors on one thread never show on another;
//   - two contexts on one model, used from two threads at once, give the same results as one context;
//   - model load options: progress callback (0 .. 1, non-decreasing, cancel -> CANCELLED), weight dtype, device;
//   - version macros and rwkv_version() agree.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "rwkv/rwkv.h"
#include "testutil/testutil.h"

namespace {

using rwkv::test::fixture;

const std::vector<int32_t> kTokens = {17, 88, 201, 0, 133, 238, 199, 145, 226, 5, 34, 255};  // ids < V = 256

std::string last_error() {
    return rwkv_last_error_message();
}

// Expects INVALID_ARGUMENT and a message that names `function`.
void expect_invalid(rwkv_status st, const char* function, const char* what) {
    EXPECT_EQ(st, RWKV_STATUS_INVALID_ARGUMENT) << what << ": " << rwkv_status_string(st);
    EXPECT_NE(last_error().find(function), std::string::npos)
        << what << ": the message '" << last_error() << "' does not name " << function;
}

// The objects every test needs, on the tiny fixture model (L2 C128 V256).
struct Handles {
    rwkv_model* model = nullptr;
    rwkv_context* ctx = nullptr;
    rwkv_state* state = nullptr;
    rwkv_sampler* sampler = nullptr;
    rwkv_model_info info{};

    Handles() {
        EXPECT_EQ(rwkv_model_load(fixture("tiny-bf16.pth").c_str(), nullptr, &model), RWKV_STATUS_OK) << last_error();
        EXPECT_EQ(rwkv_model_get_info(model, &info), RWKV_STATUS_OK);
        EXPECT_EQ(rwkv_context_init(model, nullptr, &ctx), RWKV_STATUS_OK);
        EXPECT_EQ(rwkv_state_init(model, &state), RWKV_STATUS_OK);
        EXPECT_EQ(rwkv_sampler_init(nullptr, info.n_vocab, &sampler), RWKV_STATUS_OK);
    }
    ~Handles() {
        rwkv_sampler_free(sampler);
        rwkv_state_free(state);
        rwkv_context_free(ctx);
        rwkv_model_free(model);
    }
};

// A byte-level vocabulary (ids 1..256 = bytes 0..255), written once.
std::string byte_vocab() {
    static const std::string path = [] {
        std::string p = rwkv::test::temp_path("bytes.vocab");
        std::string text;
        char line[32];
        for (int b = 0; b < 256; b++) {
            std::snprintf(line, sizeof line, "%d b'\\x%02x' 1\n", b + 1, b);
            text += line;
        }
        rwkv::test::write_file(p, std::vector<uint8_t>(text.begin(), text.end()));
        return p;
    }();
    return path;
}

}  // namespace

// ---- statuses and version -------------------------------------------------------------------------------------

TEST(ApiContract, EveryStatusHasAString) {
    std::vector<std::string> names;
    for (int s = RWKV_STATUS_OK; s <= RWKV_STATUS_CANCELLED; s++) {
        const char* name = rwkv_status_string(static_cast<rwkv_status>(s));
        ASSERT_NE(name, nullptr);
        EXPECT_GT(std::strlen(name), 0u);
        EXPECT_STRNE(name, "unknown status") << "status " << s;
        for (const std::string& other : names) EXPECT_NE(other, name) << "two statuses share a name";
        names.push_back(name);
    }
    EXPECT_STREQ(rwkv_status_string(RWKV_STATUS_OK), "ok");
    // Unknown values (any int, from C) are checked in c_header.c: in C++ they are not valid rwkv_status values.
}

TEST(ApiContract, VersionMacrosMatchTheLibrary) {
    EXPECT_STREQ(rwkv_version(), RWKV_VERSION_STRING);
    const std::string expected = std::to_string(RWKV_VERSION_MAJOR) + "." + std::to_string(RWKV_VERSION_MINOR) + "." +
                                 std::to_string(RWKV_VERSION_PATCH);
    EXPECT_EQ(expected, RWKV_VERSION_STRING);
    EXPECT_EQ(RWKV_VERSION_NUMBER, RWKV_VERSION_MAJOR * 10000 + RWKV_VERSION_MINOR * 100 + RWKV_VERSION_PATCH);
    const std::string info = rwkv_system_info();
    EXPECT_NE(info.find(RWKV_VERSION_STRING), std::string::npos) << info;
    EXPECT_NE(info.find("build"), std::string::npos) << info;
    EXPECT_NE(info.find("CUDA"), std::string::npos) << info;
    EXPECT_EQ(rwkv_system_info(), rwkv_system_info());  // static storage
}

// ---- NULL and invalid arguments ---------------------------------------------------------------------------------

TEST(ApiContract, FreeNullIsANoOp) {
    for (int i = 0; i < 2; i++) {
        rwkv_model_free(nullptr);
        rwkv_context_free(nullptr);
        rwkv_state_free(nullptr);
        rwkv_tokenizer_free(nullptr);
        rwkv_sampler_free(nullptr);
    }
}

TEST(ApiContract, NullArgumentsAreInvalidArgument) {
    Handles h;
    ASSERT_NE(h.state, nullptr);
    const std::string model_path = fixture("tiny-bf16.pth");
    const size_t V = size_t(h.info.n_vocab);
    std::vector<float> logits(V), data(rwkv_state_size(h.state));
    std::vector<uint8_t> bytes(1 << 20);
    int32_t token = 0, id = 1;
    size_t n = 0;
    rwkv_model_info info;
    rwkv_sampler_params sp = rwkv_sampler_default_params();
    float bias = 1.0f;
    rwkv_model* out_model = nullptr;  // out-handles of the failing calls (NULL afterwards)
    rwkv_context* out_ctx = nullptr;
    rwkv_state* out_state = nullptr;

    struct Case {
        const char* function;
        std::function<rwkv_status()> call;
    };
    const std::vector<Case> cases = {
        {"rwkv_model_load", [&] { return rwkv_model_load(nullptr, nullptr, &out_model); }},
        {"rwkv_model_load", [&] { return rwkv_model_load(model_path.c_str(), nullptr, nullptr); }},
        {"rwkv_model_get_info", [&] { return rwkv_model_get_info(nullptr, &info); }},
        {"rwkv_model_get_info", [&] { return rwkv_model_get_info(h.model, nullptr); }},
        {"rwkv_context_init", [&] { return rwkv_context_init(nullptr, nullptr, &out_ctx); }},
        {"rwkv_context_init", [&] { return rwkv_context_init(h.model, nullptr, nullptr); }},
        {"rwkv_state_init", [&] { return rwkv_state_init(nullptr, &out_state); }},
        {"rwkv_state_init", [&] { return rwkv_state_init(h.model, nullptr); }},
        {"rwkv_state_reset", [&] { return rwkv_state_reset(nullptr); }},
        {"rwkv_state_copy", [&] { return rwkv_state_copy(nullptr, h.state); }},
        {"rwkv_state_copy", [&] { return rwkv_state_copy(h.state, nullptr); }},
        {"rwkv_state_get_data", [&] { return rwkv_state_get_data(nullptr, data.data(), data.size()); }},
        {"rwkv_state_get_data", [&] { return rwkv_state_get_data(h.state, nullptr, data.size()); }},
        {"rwkv_state_set_data", [&] { return rwkv_state_set_data(nullptr, data.data(), data.size()); }},
        {"rwkv_state_set_data", [&] { return rwkv_state_set_data(h.state, nullptr, data.size()); }},
        {"rwkv_state_save", [&] { return rwkv_state_save(nullptr, "x.state"); }},
        {"rwkv_state_save", [&] { return rwkv_state_save(h.state, nullptr); }},
        {"rwkv_state_load", [&] { return rwkv_state_load(nullptr, "x.state"); }},
        {"rwkv_state_load", [&] { return rwkv_state_load(h.state, nullptr); }},
        {"rwkv_state_serialize", [&] { return rwkv_state_serialize(nullptr, bytes.data(), bytes.size(), &n); }},
        {"rwkv_state_serialize", [&] { return rwkv_state_serialize(h.state, bytes.data(), bytes.size(), nullptr); }},
        {"rwkv_state_serialize", [&] { return rwkv_state_serialize(h.state, nullptr, 100, &n); }},
        {"rwkv_state_deserialize", [&] { return rwkv_state_deserialize(nullptr, bytes.data(), 10); }},
        {"rwkv_state_deserialize", [&] { return rwkv_state_deserialize(h.state, nullptr, 10); }},
        {"rwkv_state_load_tuning", [&] { return rwkv_state_load_tuning(nullptr, "x.pth"); }},
        {"rwkv_state_load_tuning", [&] { return rwkv_state_load_tuning(h.state, nullptr); }},
        {"rwkv_eval",
         [&] {
             return rwkv_eval(nullptr, h.state, kTokens.data(), kTokens.size(), RWKV_LOGITS_LAST, logits.data(), V);
         }},
        {"rwkv_eval",
         [&] { return rwkv_eval(h.ctx, nullptr, kTokens.data(), kTokens.size(), RWKV_LOGITS_LAST, logits.data(), V); }},
        {"rwkv_eval", [&] { return rwkv_eval(h.ctx, h.state, nullptr, 3, RWKV_LOGITS_LAST, logits.data(), V); }},
        {"rwkv_eval",
         [&] { return rwkv_eval(h.ctx, h.state, kTokens.data(), kTokens.size(), RWKV_LOGITS_LAST, nullptr, V); }},
        {"rwkv_eval", [&] { return rwkv_decode(nullptr, h.state, 1, logits.data(), V); }},
        {"rwkv_eval", [&] { return rwkv_decode(h.ctx, nullptr, 1, logits.data(), V); }},
        {"rwkv_decode_batch", [&] { return rwkv_decode_batch(nullptr, &h.state, &id, 1, logits.data(), V); }},
        {"rwkv_decode_batch", [&] { return rwkv_decode_batch(h.ctx, nullptr, &id, 1, logits.data(), V); }},
        {"rwkv_decode_batch", [&] { return rwkv_decode_batch(h.ctx, &h.state, nullptr, 1, logits.data(), V); }},
        {"rwkv_decode_batch",
         [&] {
             rwkv_state* states[2] = {h.state, nullptr};
             const int32_t tokens[2] = {1, 2};
             return rwkv_decode_batch(h.ctx, states, tokens, 2, nullptr, 0);
         }},
        {"rwkv_tokenizer_load", [&] { return rwkv_tokenizer_load(byte_vocab().c_str(), nullptr); }},
        {"rwkv_tokenizer_encode", [&] { return rwkv_tokenizer_encode(nullptr, "a", 1, &id, 1, &n); }},
        {"rwkv_tokenizer_decode", [&] { return rwkv_tokenizer_decode(nullptr, &id, 1, nullptr, 0, &n); }},
        {"rwkv_sampler_init", [&] { return rwkv_sampler_init(&sp, int(V), nullptr); }},
        {"rwkv_sampler_set_params", [&] { return rwkv_sampler_set_params(nullptr, &sp); }},
        {"rwkv_sampler_set_params", [&] { return rwkv_sampler_set_params(h.sampler, nullptr); }},
        {"rwkv_sampler_set_banned", [&] { return rwkv_sampler_set_banned(nullptr, &id, 1); }},
        {"rwkv_sampler_set_banned", [&] { return rwkv_sampler_set_banned(h.sampler, nullptr, 1); }},
        {"rwkv_sampler_set_bias", [&] { return rwkv_sampler_set_bias(nullptr, &id, &bias, 1); }},
        {"rwkv_sampler_set_bias", [&] { return rwkv_sampler_set_bias(h.sampler, nullptr, &bias, 1); }},
        {"rwkv_sampler_set_bias", [&] { return rwkv_sampler_set_bias(h.sampler, &id, nullptr, 1); }},
        {"rwkv_sampler_sample", [&] { return rwkv_sampler_sample(nullptr, logits.data(), V, &token); }},
        {"rwkv_sampler_sample", [&] { return rwkv_sampler_sample(h.sampler, nullptr, V, &token); }},
        {"rwkv_sampler_sample", [&] { return rwkv_sampler_sample(h.sampler, logits.data(), V, nullptr); }},
        {"rwkv_sampler_accept", [&] { return rwkv_sampler_accept(nullptr, nullptr, 1); }},
        {"rwkv_sampler_reset", [&] { return rwkv_sampler_reset(nullptr); }},
        {"rwkv_generate",
         [&] {
             return rwkv_generate(nullptr, h.state, nullptr, h.sampler, kTokens.data(), kTokens.size(), nullptr,
                                  nullptr, nullptr, nullptr);
         }},
        {"rwkv_generate",
         [&] {
             return rwkv_generate(h.ctx, nullptr, nullptr, h.sampler, kTokens.data(), kTokens.size(), nullptr, nullptr,
                                  nullptr, nullptr);
         }},
        {"rwkv_generate",
         [&] {
             return rwkv_generate(h.ctx, h.state, nullptr, nullptr, kTokens.data(), kTokens.size(), nullptr, nullptr,
                                  nullptr, nullptr);
         }},
        {"rwkv_generate",
         [&] {
             return rwkv_generate(h.ctx, h.state, nullptr, h.sampler, nullptr, 3, nullptr, nullptr, nullptr, nullptr);
         }},
    };
    for (size_t i = 0; i < cases.size(); i++) {
        SCOPED_TRACE("case " + std::to_string(i) + ": " + cases[i].function);
        expect_invalid(cases[i].call(), cases[i].function, cases[i].function);
    }
    // The handles survived every bad call.
    EXPECT_EQ(rwkv_eval(h.ctx, h.state, kTokens.data(), kTokens.size(), RWKV_LOGITS_LAST, logits.data(), V),
              RWKV_STATUS_OK)
        << last_error();

    // Queries without a status answer 0 for NULL.
    EXPECT_EQ(rwkv_state_size(nullptr), 0u);
    EXPECT_EQ(rwkv_tokenizer_vocab_size(nullptr), 0u);
    EXPECT_EQ(rwkv_utf8_check(nullptr, 10), 0u);
}

TEST(ApiContract, OutHandlesAreNullAfterAFailure) {
    rwkv_model* model = reinterpret_cast<rwkv_model*>(0x1);
    EXPECT_EQ(rwkv_model_load(nullptr, nullptr, &model), RWKV_STATUS_INVALID_ARGUMENT);
    EXPECT_EQ(model, nullptr);
    model = reinterpret_cast<rwkv_model*>(0x1);
    EXPECT_EQ(rwkv_model_load("/nonexistent/model.pth", nullptr, &model), RWKV_STATUS_IO_ERROR);
    EXPECT_EQ(model, nullptr);
    EXPECT_NE(last_error().find("/nonexistent/model.pth"), std::string::npos) << last_error();

    rwkv_context* ctx = reinterpret_cast<rwkv_context*>(0x1);
    EXPECT_EQ(rwkv_context_init(nullptr, nullptr, &ctx), RWKV_STATUS_INVALID_ARGUMENT);
    EXPECT_EQ(ctx, nullptr);
    rwkv_state* state = reinterpret_cast<rwkv_state*>(0x1);
    EXPECT_EQ(rwkv_state_init(nullptr, &state), RWKV_STATUS_INVALID_ARGUMENT);
    EXPECT_EQ(state, nullptr);
    rwkv_tokenizer* tok = reinterpret_cast<rwkv_tokenizer*>(0x1);
    EXPECT_EQ(rwkv_tokenizer_load("/nonexistent/vocab.txt", &tok), RWKV_STATUS_IO_ERROR);
    EXPECT_EQ(tok, nullptr);
    rwkv_sampler* sampler = reinterpret_cast<rwkv_sampler*>(0x1);
    EXPECT_EQ(rwkv_sampler_init(nullptr, 0, &sampler), RWKV_STATUS_INVALID_ARGUMENT);
    EXPECT_EQ(sampler, nullptr);
}

TEST(ApiContract, InvalidValuesAreInvalidArgument) {
    Handles h;
    ASSERT_NE(h.state, nullptr);
    const std::string model_path = fixture("tiny-bf16.pth");
    const size_t V = size_t(h.info.n_vocab);
    std::vector<float> logits(V * kTokens.size());
    rwkv_model* m = nullptr;

    rwkv_model_params mp = rwkv_model_default_params();
    mp.n_threads = -1;
    expect_invalid(rwkv_model_load(model_path.c_str(), &mp, &m), "rwkv_model_load", "n_threads -1");
    mp = rwkv_model_default_params();
    mp.backend = static_cast<rwkv_backend>(17);
    expect_invalid(rwkv_model_load(model_path.c_str(), &mp, &m), "rwkv_model_load", "backend 17");
    mp = rwkv_model_default_params();
    mp.device = -1;
    expect_invalid(rwkv_model_load(model_path.c_str(), &mp, &m), "rwkv_model_load", "device -1");
    mp = rwkv_model_default_params();
    mp.weight_dtype = static_cast<rwkv_dtype>(9);
    expect_invalid(rwkv_model_load(model_path.c_str(), &mp, &m), "rwkv_model_load", "weight_dtype 9");
    EXPECT_EQ(m, nullptr);

    rwkv_context* ctx = nullptr;
    rwkv_context_params cp = rwkv_context_default_params();
    cp.max_seq_tokens = 0;
    expect_invalid(rwkv_context_init(h.model, &cp, &ctx), "rwkv_context_init", "max_seq_tokens 0");
    cp = rwkv_context_default_params();
    cp.n_threads = -3;
    expect_invalid(rwkv_context_init(h.model, &cp, &ctx), "rwkv_context_init", "n_threads -3");

    // Sizes: a state buffer of the wrong length, a logits buffer too small, a token outside the vocabulary.
    std::vector<float> data(rwkv_state_size(h.state) + 1);
    expect_invalid(rwkv_state_get_data(h.state, data.data(), data.size()), "rwkv_state_get_data", "n_floats + 1");
    expect_invalid(rwkv_state_set_data(h.state, data.data(), data.size() - 2), "rwkv_state_set_data", "n_floats - 1");
    expect_invalid(rwkv_eval(h.ctx, h.state, kTokens.data(), kTokens.size(), RWKV_LOGITS_ALL, logits.data(), V),
                   "rwkv_eval", "RWKV_LOGITS_ALL into one row");
    expect_invalid(rwkv_eval(h.ctx, h.state, kTokens.data(), kTokens.size(), static_cast<rwkv_logits_mode>(5),
                             logits.data(), logits.size()),
                   "rwkv_eval", "mode 5");

    std::vector<float> before(rwkv_state_size(h.state)), after(before.size());
    ASSERT_EQ(rwkv_eval(h.ctx, h.state, kTokens.data(), 4, RWKV_LOGITS_NONE, nullptr, 0), RWKV_STATUS_OK);
    ASSERT_EQ(rwkv_state_get_data(h.state, before.data(), before.size()), RWKV_STATUS_OK);
    const int32_t bad[] = {1, 2, 256};
    EXPECT_EQ(rwkv_eval(h.ctx, h.state, bad, 3, RWKV_LOGITS_LAST, logits.data(), V), RWKV_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("256"), std::string::npos) << last_error();
    EXPECT_EQ(rwkv_decode(h.ctx, h.state, -1, logits.data(), V), RWKV_STATUS_INVALID_ARGUMENT);
    rwkv_state* twice[2] = {h.state, h.state};
    const int32_t two[2] = {1, 2};
    expect_invalid(rwkv_decode_batch(h.ctx, twice, two, 2, nullptr, 0), "rwkv_decode_batch", "a state twice");
    rwkv_state* one[1] = {h.state};
    EXPECT_EQ(rwkv_decode_batch(h.ctx, one, &bad[2], 1, nullptr, 0), RWKV_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("256"), std::string::npos) << last_error();
    expect_invalid(rwkv_decode_batch(h.ctx, one, two, 1, logits.data(), V - 1), "rwkv_decode_batch", "logits < V");
    ASSERT_EQ(rwkv_state_get_data(h.state, after.data(), after.size()), RWKV_STATUS_OK);
    EXPECT_EQ(before, after) << "a rejected eval changed the state";

    // Sampler: bad parameters name the parameter.
    rwkv_sampler* s = nullptr;
    rwkv_sampler_params p = rwkv_sampler_default_params();
    p.top_p = 2.0f;
    EXPECT_EQ(rwkv_sampler_init(&p, int(V), &s), RWKV_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("top_p"), std::string::npos) << last_error();
    EXPECT_EQ(s, nullptr);
    expect_invalid(rwkv_sampler_init(nullptr, 0, &s), "rwkv_sampler_init", "n_vocab 0");
    std::vector<float> one_row(V, 0.0f);
    int32_t token = 0;
    expect_invalid(rwkv_sampler_sample(h.sampler, one_row.data(), V - 1, &token), "rwkv_sampler_sample",
                   "n_logits != n_vocab");
    EXPECT_EQ(rwkv_sampler_accept(h.sampler, nullptr, int32_t(V)), RWKV_STATUS_INVALID_ARGUMENT);

    // Tokenizer buffers too small; a size query is OK.
    rwkv_tokenizer* tok = nullptr;
    ASSERT_EQ(rwkv_tokenizer_load(byte_vocab().c_str(), &tok), RWKV_STATUS_OK) << last_error();
    size_t n = 0;
    int32_t ids[2];
    EXPECT_EQ(rwkv_tokenizer_encode(tok, "hello", 5, nullptr, 0, &n), RWKV_STATUS_OK);
    EXPECT_EQ(n, 5u);
    expect_invalid(rwkv_tokenizer_encode(tok, "hello", 5, ids, 2, &n), "rwkv_tokenizer_encode", "capacity 2 < 5");
    char text[2];
    const int32_t five[] = {105, 106, 107, 108, 109};
    expect_invalid(rwkv_tokenizer_decode(tok, five, 5, text, 2, &n), "rwkv_tokenizer_decode", "capacity 2 < 5");
    const int32_t negative = -5;
    EXPECT_EQ(rwkv_tokenizer_decode(tok, &negative, 1, nullptr, 0, &n), RWKV_STATUS_INVALID_ARGUMENT);
    rwkv_tokenizer_free(tok);

    // Generation: empty prompt; stop strings without a tokenizer.
    EXPECT_EQ(rwkv_generate(h.ctx, h.state, nullptr, h.sampler, kTokens.data(), 0, nullptr, nullptr, nullptr, nullptr),
              RWKV_STATUS_INVALID_ARGUMENT);
    rwkv_generate_params gp = rwkv_generate_default_params();
    const char* stop[] = {"\n"};
    gp.stop_strings = stop;
    gp.n_stop_strings = 1;
    EXPECT_EQ(rwkv_generate(h.ctx, h.state, nullptr, h.sampler, kTokens.data(), 2, &gp, nullptr, nullptr, nullptr),
              RWKV_STATUS_INVALID_ARGUMENT);
}

// ---- errors are per thread ----------------------------------------------------------------------------------------

TEST(ApiContract, LastErrorIsPerThread) {
    // Thread A fails, then waits while thread B fails with another message; A's message must be A's own.
    std::mutex mu;
    std::condition_variable cv;
    int phase = 0;
    std::string a_after, b_after, fresh;
    std::thread a([&] {
        rwkv_model* m = nullptr;
        rwkv_model_load("/nonexistent/thread-a.pth", nullptr, &m);
        {
            std::unique_lock<std::mutex> lock(mu);
            phase = 1;
            cv.notify_all();
            cv.wait(lock, [&] { return phase == 2; });
        }
        a_after = last_error();
    });
    std::thread b([&] {
        {
            std::unique_lock<std::mutex> lock(mu);
            cv.wait(lock, [&] { return phase == 1; });
        }
        rwkv_state_reset(nullptr);
        b_after = last_error();
        std::lock_guard<std::mutex> lock(mu);
        phase = 2;
        cv.notify_all();
    });
    a.join();
    b.join();
    std::thread c([&] { fresh = last_error(); });
    c.join();
    EXPECT_NE(a_after.find("thread-a.pth"), std::string::npos) << a_after;
    EXPECT_NE(b_after.find("rwkv_state_reset"), std::string::npos) << b_after;
    EXPECT_EQ(b_after.find("thread-a.pth"), std::string::npos) << b_after;
    EXPECT_EQ(fresh, "") << "a new thread sees another thread's error";

    // Many threads failing at once, each checking its own message.
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; t++)
        threads.emplace_back([t, &mismatches] {
            const std::string path = "/nonexistent/thread-" + std::to_string(t) + ".pth";
            for (int i = 0; i < 50; i++) {
                rwkv_model* m = nullptr;
                rwkv_model_load(path.c_str(), nullptr, &m);
                if (std::string(rwkv_last_error_message()).find(path) == std::string::npos) mismatches++;
            }
        });
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(mismatches.load(), 0);
}

TEST(ApiContract, SuccessLeavesTheLastErrorAlone) {
    rwkv_state_reset(nullptr);
    const std::string before = last_error();
    EXPECT_FALSE(before.empty());
    EXPECT_STREQ(rwkv_status_string(RWKV_STATUS_OK), "ok");
    rwkv_sampler* s = nullptr;
    ASSERT_EQ(rwkv_sampler_init(nullptr, 10, &s), RWKV_STATUS_OK);
    rwkv_sampler_free(s);
    EXPECT_EQ(last_error(), before);
}

// ---- two contexts on one model, two threads -----------------------------------------------------------------------

namespace {

// Prefills `prompt`, then decodes 16 tokens greedily; returns every logit row along the way.
std::vector<float> run_conversation(const rwkv_model* model, rwkv_context* ctx, const std::vector<int32_t>& prompt) {
    rwkv_model_info info;
    EXPECT_EQ(rwkv_model_get_info(model, &info), RWKV_STATUS_OK);
    const size_t V = size_t(info.n_vocab);
    rwkv_state* state = nullptr;
    EXPECT_EQ(rwkv_state_init(model, &state), RWKV_STATUS_OK);
    std::vector<float> all(prompt.size() * V);
    EXPECT_EQ(rwkv_eval(ctx, state, prompt.data(), prompt.size(), RWKV_LOGITS_ALL, all.data(), all.size()),
              RWKV_STATUS_OK)
        << rwkv_last_error_message();
    std::vector<float> row(all.end() - std::ptrdiff_t(V), all.end());
    for (int step = 0; step < 16; step++) {
        const int32_t next = int32_t(std::max_element(row.begin(), row.end()) - row.begin());
        EXPECT_EQ(rwkv_decode(ctx, state, next, row.data(), V), RWKV_STATUS_OK);
        all.insert(all.end(), row.begin(), row.end());
    }
    rwkv_state_free(state);
    return all;
}

}  // namespace

TEST(ApiContract, TwoContextsOnOneModelFromTwoThreadsMatchOneContext) {
    rwkv_model_params mp = rwkv_model_default_params();
    mp.n_threads = 2;
    rwkv_model* model = nullptr;
    ASSERT_EQ(rwkv_model_load(fixture("tiny-bf16.pth").c_str(), &mp, &model), RWKV_STATUS_OK) << last_error();
    const std::vector<int32_t> prompt_a = kTokens;
    const std::vector<int32_t> prompt_b(kTokens.rbegin(), kTokens.rend());

    // Reference: one context, the two conversations in turn.
    rwkv_context* one = nullptr;
    ASSERT_EQ(rwkv_context_init(model, nullptr, &one), RWKV_STATUS_OK);
    const std::vector<float> ref_a = run_conversation(model, one, prompt_a);
    const std::vector<float> ref_b = run_conversation(model, one, prompt_b);
    rwkv_context_free(one);
    ASSERT_NE(ref_a, ref_b);

    // Two contexts, two threads, at the same time, several rounds each.
    std::atomic<int> differences{0};
    auto worker = [&](const std::vector<int32_t>& prompt, const std::vector<float>& ref) {
        rwkv_context* ctx = nullptr;
        if (rwkv_context_init(model, nullptr, &ctx) != RWKV_STATUS_OK) {
            differences++;
            return;
        }
        for (int round = 0; round < 10; round++)
            if (run_conversation(model, ctx, prompt) != ref) differences++;
        rwkv_context_free(ctx);
    };
    std::thread ta(worker, std::cref(prompt_a), std::cref(ref_a));
    std::thread tb(worker, std::cref(prompt_b), std::cref(ref_b));
    ta.join();
    tb.join();
    EXPECT_EQ(differences.load(), 0) << "results from two threads differ from one context's";
    rwkv_model_free(model);
}

// ---- model load options ---------------------------------------------------------------------------------------

namespace {

struct ProgressLog {
    std::vector<float> values;
    int cancel_at_call = -1;  // return non-zero on this call (0-based), -1 = never
};

int record_progress(float progress, void* user_data) {
    auto* log = static_cast<ProgressLog*>(user_data);
    log->values.push_back(progress);
    return int(log->values.size()) - 1 == log->cancel_at_call ? 1 : 0;
}

std::vector<float> last_logits(rwkv_model* model) {
    rwkv_context* ctx = nullptr;
    rwkv_state* state = nullptr;
    rwkv_model_info info;
    EXPECT_EQ(rwkv_model_get_info(model, &info), RWKV_STATUS_OK);
    EXPECT_EQ(rwkv_context_init(model, nullptr, &ctx), RWKV_STATUS_OK);
    EXPECT_EQ(rwkv_state_init(model, &state), RWKV_STATUS_OK);
    std::vector<float> logits(size_t(info.n_vocab));
    EXPECT_EQ(rwkv_eval(ctx, state, kTokens.data(), kTokens.size(), RWKV_LOGITS_LAST, logits.data(), logits.size()),
              RWKV_STATUS_OK);
    rwkv_state_free(state);
    rwkv_context_free(ctx);
    return logits;
}

}  // namespace

TEST(ApiContract, ProgressCallbackGoesFromZeroToOne) {
    ProgressLog log;
    rwkv_model_params mp = rwkv_model_default_params();
    mp.progress_callback = record_progress;
    mp.progress_user_data = &log;
    mp.weight_dtype = RWKV_DTYPE_F32;  // more steps: one per converted matrix
    rwkv_model* model = nullptr;
    ASSERT_EQ(rwkv_model_load(fixture("tiny-bf16.pth").c_str(), &mp, &model), RWKV_STATUS_OK) << last_error();
    ASSERT_GE(log.values.size(), 3u);
    EXPECT_EQ(log.values.front(), 0.0f);
    EXPECT_EQ(log.values.back(), 1.0f);
    for (size_t i = 1; i < log.values.size(); i++) EXPECT_GE(log.values[i], log.values[i - 1]);
    rwkv_model_free(model);
}

TEST(ApiContract, ProgressCallbackCancels) {
    // Count the calls of a full load, then cancel at each of them in turn.
    ProgressLog full;
    rwkv_model_params mp = rwkv_model_default_params();
    mp.progress_callback = record_progress;
    mp.progress_user_data = &full;
    mp.weight_dtype = RWKV_DTYPE_F16;
    rwkv_model* model = nullptr;
    ASSERT_EQ(rwkv_model_load(fixture("tiny-bf16.pth").c_str(), &mp, &model), RWKV_STATUS_OK) << last_error();
    rwkv_model_free(model);
    for (int at = 0; at < int(full.values.size()); at++) {
        ProgressLog log;
        log.cancel_at_call = at;
        mp.progress_user_data = &log;
        model = reinterpret_cast<rwkv_model*>(0x1);
        EXPECT_EQ(rwkv_model_load(fixture("tiny-bf16.pth").c_str(), &mp, &model), RWKV_STATUS_CANCELLED) << at;
        EXPECT_EQ(model, nullptr);
        EXPECT_EQ(int(log.values.size()), at + 1) << "the callback was called again after cancelling";
        EXPECT_NE(last_error().find("cancel"), std::string::npos) << last_error();
    }
}

TEST(ApiContract, WeightDtypeConvertsAtLoad) {
    const std::string path = fixture("tiny-bf16.pth");
    rwkv_model* stored = nullptr;
    ASSERT_EQ(rwkv_model_load(path.c_str(), nullptr, &stored), RWKV_STATUS_OK) << last_error();
    rwkv_model_info info;
    ASSERT_EQ(rwkv_model_get_info(stored, &info), RWKV_STATUS_OK);
    EXPECT_EQ(info.weight_dtype, RWKV_DTYPE_BF16);
    const std::vector<float> ref = last_logits(stored);

    struct Want {
        rwkv_dtype dtype;
        double tolerance;  // relative to max |logit|: bf16 -> f32 is exact; -> f16 rounds (8 more bits of mantissa,
                           // but a smaller range) so it stays close
    };
    for (Want w : {Want{RWKV_DTYPE_F32, 1e-4}, Want{RWKV_DTYPE_F16, 2e-2}, Want{RWKV_DTYPE_BF16, 0.0}}) {
        SCOPED_TRACE(int(w.dtype));
        rwkv_model_params mp = rwkv_model_default_params();
        mp.weight_dtype = w.dtype;
        rwkv_model* model = nullptr;
        ASSERT_EQ(rwkv_model_load(path.c_str(), &mp, &model), RWKV_STATUS_OK) << last_error();
        rwkv_model_info converted;
        ASSERT_EQ(rwkv_model_get_info(model, &converted), RWKV_STATUS_OK);
        EXPECT_EQ(converted.weight_dtype, w.dtype);
        EXPECT_EQ(converted.n_params, info.n_params);
        const std::vector<float> got = last_logits(model);
        const rwkv::test::ErrorStats e = rwkv::test::compare(got.data(), ref.data(), ref.size());
        EXPECT_LE(e.max_abs_err, w.tolerance * e.max_abs_ref) << "max abs err " << e.max_abs_err;
        rwkv_model_free(model);
    }
    rwkv_model_free(stored);
}

TEST(ApiContract, DeviceIsIgnoredByTheCpuBackend) {
    rwkv_model_params mp = rwkv_model_default_params();
    mp.backend = RWKV_BACKEND_CPU;
    mp.device = 3;
    rwkv_model* model = nullptr;
    ASSERT_EQ(rwkv_model_load(fixture("tiny-bf16.pth").c_str(), &mp, &model), RWKV_STATUS_OK) << last_error();
    rwkv_model_info info;
    ASSERT_EQ(rwkv_model_get_info(model, &info), RWKV_STATUS_OK);
    EXPECT_EQ(info.backend, RWKV_BACKEND_CPU);
    rwkv_model_free(model);
}

// ---- generation stops are successes -----------------------------------------------------------------------------

TEST(ApiContract, GenerationStopsAreReported) {
    Handles h;
    ASSERT_NE(h.state, nullptr);
    rwkv_generate_params gp = rwkv_generate_default_params();
    gp.n_stop_tokens = 0;  // let it run
    gp.max_tokens = 5;
    rwkv_generate_result r;
    ASSERT_EQ(
        rwkv_generate(h.ctx, h.state, nullptr, h.sampler, kTokens.data(), kTokens.size(), &gp, nullptr, nullptr, &r),
        RWKV_STATUS_OK)
        << last_error();
    EXPECT_EQ(r.stop_reason, RWKV_STOP_LENGTH);
    EXPECT_EQ(r.n_generated_tokens, 5u);
    EXPECT_EQ(r.n_prompt_tokens, kTokens.size());

    // The callback stops after two tokens.
    int calls = 0;
    auto stop_after_two = [](int32_t, const char*, size_t, void* user) -> int {
        return ++*static_cast<int*>(user) >= 2;
    };
    gp.max_tokens = 50;
    ASSERT_EQ(rwkv_generate(h.ctx, h.state, nullptr, h.sampler, kTokens.data(), 1, &gp, stop_after_two, &calls, &r),
              RWKV_STATUS_OK);
    EXPECT_EQ(r.stop_reason, RWKV_STOP_CANCELLED);
    EXPECT_EQ(calls, 2);

    // The cancel flag, already set.
    volatile int cancel = 1;
    gp.cancel = &cancel;
    ASSERT_EQ(rwkv_generate(h.ctx, h.state, nullptr, h.sampler, kTokens.data(), 1, &gp, nullptr, nullptr, &r),
              RWKV_STATUS_OK);
    EXPECT_EQ(r.stop_reason, RWKV_STOP_CANCELLED);
    EXPECT_EQ(r.n_generated_tokens, 0u);
}
