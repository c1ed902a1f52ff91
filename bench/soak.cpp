// rwkv-soak: a long decode on a synthetic model, checking that nothing drifts over hours of chat.
//
//   rwkv-soak [--tokens N] [--preset NAME] [--vocab V] [--threads T] [--block B]
//
// Decodes N tokens (default 100,000) one at a time through the public API (rwkv_decode), each token the argmax of
// the previous logits, on rwkv_model_load_synthetic(preset, vocab). Every B tokens (default 1000) it records the
// time per token (wall clock, and the process's CPU time, which a busy machine disturbs far less), the resident
// memory (/proc/self/statm) and whether the state and the logits are all finite, and prints one line; at the end a
// summary: time per token over the first and the last block, the median, the slope over the run, RSS before
// (after the first block, when every buffer has been touched) and after, max |state|. Last, an A/B comparison that
// load on the machine cannot bias: short bursts from the zero state and from the final state, interleaved, so that
// a state that had drifted into slow arithmetic (denormals, say) would show as a ratio above 1.
//
// Exit status: 0 when the state stayed finite and RSS grew by less than 8 MiB; 1 otherwise; 2 on a setup error.
// Speed is reported, not judged (a shared machine makes timings noisy); docs/robustness.md records the figures.
#include <rwkv/rwkv.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

long rss_kib() {
    long pages = 0, resident = 0;
    std::ifstream("/proc/self/statm") >> pages >> resident;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

[[noreturn]] void die(const char* what, rwkv_status s) {
    std::fprintf(stderr, "rwkv-soak: %s: %s: %s\n", what, rwkv_status_string(s), rwkv_last_error_message());
    std::exit(2);
}

double cpu_ms() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

struct Block {
    long end_token;
    double ms_per_token;
    double cpu_ms_per_token;
    long rss_kib;
    float max_abs_state;
    bool finite;
};

// One greedy step: decodes `token`, returns the argmax of the logits; `finite` is cleared by any non-finite logit.
int32_t step(rwkv_context* ctx, rwkv_state* state, int32_t token, std::vector<float>& logits, bool& finite) {
    if (rwkv_status s = rwkv_decode(ctx, state, token, logits.data(), logits.size())) die("rwkv_decode", s);
    size_t best = 0;
    for (size_t i = 0; i < logits.size(); i++) {
        finite &= std::isfinite(logits[i]);
        if (logits[i] > logits[best]) best = i;
    }
    return static_cast<int32_t>(best);
}

// CPU ms per token of `n` greedy steps from a copy of `from`.
double burst_cpu_ms(rwkv_context* ctx, rwkv_state* work, const rwkv_state* from, int32_t token, long n,
                    std::vector<float>& logits, bool& finite) {
    if (rwkv_status s = rwkv_state_copy(work, from)) die("rwkv_state_copy", s);
    const double t0 = cpu_ms();
    for (long i = 0; i < n; i++) token = step(ctx, work, token, logits, finite);
    return (cpu_ms() - t0) / double(n);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Prints time per token over the first and the last block, the median, the range and the least-squares slope
// against the token index (as a fraction of the mean, per 100k tokens).
void print_timing(const char* clock, const std::vector<Block>& blocks, double Block::*ms) {
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    std::vector<double> sorted;
    for (const Block& b : blocks) {
        const double x = static_cast<double>(b.end_token);
        sx += x;
        sy += b.*ms;
        sxx += x * x;
        sxy += x * (b.*ms);
        sorted.push_back(b.*ms);
    }
    const double n = static_cast<double>(blocks.size());
    const double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);  // ms per token, per token
    std::sort(sorted.begin(), sorted.end());
    const double first = blocks.front().*ms, last = blocks.back().*ms;
    std::printf(
        "  %-4s ms/token: first block %.4f, last block %.4f (last/first %.3f), median %.4f, min %.4f, max %.4f; "
        "trend %+.2f%% of the mean per 100k tokens\n",
        clock, first, last, last / first, sorted[sorted.size() / 2], sorted.front(), sorted.back(),
        slope * 1e5 / (sy / n) * 100);
}

}  // namespace

int main(int argc, char** argv) {
    long n_tokens = 100000, block = 1000;
    int threads = 1, vocab = 0;
    std::string preset = "tiny";
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "rwkv-soak: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--tokens")
            n_tokens = std::atol(value());
        else if (a == "--preset")
            preset = value();
        else if (a == "--vocab")
            vocab = std::atoi(value());
        else if (a == "--threads")
            threads = std::atoi(value());
        else if (a == "--block")
            block = std::atol(value());
        else {
            std::fprintf(stderr,
                         "usage: rwkv-soak [--tokens N] [--preset NAME] [--vocab V] [--threads T] [--block B]\n");
            return 2;
        }
    }
    if (n_tokens < 2 * block || block < 1) {
        std::fprintf(stderr, "rwkv-soak: --tokens must be at least two blocks\n");
        return 2;
    }

    rwkv_synthetic_params sp = rwkv_synthetic_default_params();
    sp.preset = preset.c_str();
    sp.n_vocab = vocab;
    rwkv_model_params mp = rwkv_model_default_params();
    mp.n_threads = threads;
    rwkv_model* model = nullptr;
    if (rwkv_status s = rwkv_model_load_synthetic(&sp, &mp, &model)) die("rwkv_model_load_synthetic", s);
    rwkv_model_info info;
    rwkv_model_get_info(model, &info);
    rwkv_context* ctx = nullptr;
    if (rwkv_status s = rwkv_context_init(model, nullptr, &ctx)) die("rwkv_context_init", s);
    rwkv_state *state = nullptr, *start = nullptr, *work = nullptr;
    if (rwkv_status s = rwkv_state_init(model, &state)) die("rwkv_state_init", s);
    if (rwkv_status s = rwkv_state_init(model, &start)) die("rwkv_state_init", s);
    if (rwkv_status s = rwkv_state_init(model, &work)) die("rwkv_state_init", s);

    const size_t n_vocab = static_cast<size_t>(info.n_vocab);
    std::vector<float> logits(n_vocab);
    std::vector<float> snapshot(rwkv_state_size(state));
    std::printf("rwkv-soak: %s preset, L%d C%d V%d, %d thread(s), %ld tokens, %s\n", preset.c_str(), info.n_layer,
                info.n_embd, info.n_vocab, threads, n_tokens, rwkv_system_info());
    std::printf("%10s %12s %12s %10s %14s %7s\n", "tokens", "wall ms/tok", "CPU ms/tok", "RSS MiB", "max|state|",
                "finite");

    std::vector<Block> blocks;
    int32_t token = 0;
    bool all_finite = true;
    auto t_block = std::chrono::steady_clock::now();
    double cpu_block = cpu_ms();
    for (long t = 1; t <= n_tokens; t++) {
        bool finite = true;
        token = step(ctx, state, token, logits, finite);
        all_finite &= finite;
        if (t % block == 0) {
            auto now = std::chrono::steady_clock::now();
            const double ms = std::chrono::duration<double, std::milli>(now - t_block).count() / double(block);
            const double cpu = (cpu_ms() - cpu_block) / double(block);
            rwkv_state_get_data(state, snapshot.data(), snapshot.size());
            float max_abs = 0;
            bool state_finite = true;
            for (float x : snapshot) {
                state_finite &= std::isfinite(x);
                max_abs = std::max(max_abs, std::fabs(x));
            }
            all_finite &= state_finite;
            blocks.push_back({t, ms, cpu, rss_kib(), max_abs, state_finite && finite});
            if (blocks.size() <= 3 || t % (10 * block) == 0 || t == n_tokens || !state_finite)
                std::printf("%10ld %12.4f %12.4f %10.1f %14.4g %7s\n", t, ms, cpu, blocks.back().rss_kib / 1024.0,
                            max_abs, state_finite ? "yes" : "NO");
            std::fflush(stdout);
            t_block = std::chrono::steady_clock::now();  // the check is not counted in the next block
            cpu_block = cpu_ms();
        }
    }

    const Block& first = blocks.front();
    const Block& last = blocks.back();
    const long rss_growth = last.rss_kib - first.rss_kib;
    std::printf("\nsummary: %ld tokens in %zu blocks of %ld\n", n_tokens, blocks.size(), block);
    print_timing("wall", blocks, &Block::ms_per_token);
    print_timing("CPU", blocks, &Block::cpu_ms_per_token);
    std::vector<double> from_start, from_end;
    for (int round = 0; round < 10; round++) {
        from_start.push_back(burst_cpu_ms(ctx, work, start, 0, block / 2, logits, all_finite));
        from_end.push_back(burst_cpu_ms(ctx, work, state, token, block / 2, logits, all_finite));
    }
    std::printf(
        "  A/B  CPU ms/token, 10 interleaved bursts of %ld: from the zero state %.4f, from the final state %.4f "
        "(ratio %.3f, medians)\n",
        block / 2, median(from_start), median(from_end), median(from_end) / median(from_start));
    std::printf("  RSS: %.1f MiB after the first block, %.1f MiB at the end (%+ld KiB)\n", first.rss_kib / 1024.0,
                last.rss_kib / 1024.0, rss_growth);
    std::printf("  state: finite throughout: %s; max|state| %.4g at the end\n", all_finite ? "yes" : "NO",
                last.max_abs_state);

    rwkv_state_free(work);
    rwkv_state_free(start);
    rwkv_state_free(state);
    rwkv_context_free(ctx);
    rwkv_model_free(model);
    const bool ok = all_finite && rss_growth < 8 * 1024;
    return ok ? 0 : 1;
}
