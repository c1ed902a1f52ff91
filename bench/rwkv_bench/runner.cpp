// The measurements. Public API only: rwkv_model_load / rwkv_model_load_synthetic, contexts, states, rwkv_eval,
// rwkv_decode and, when this build declares it, rwkv_decode_batch.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <thread>

#include "bench.h"
#include "membw.h"
#include "rwkv/rwkv.hpp"

namespace rwkv_bench {
namespace {

// rwkv_decode_batch(ctx, states, tokens, n_seq, logits, n_logits), found by argument-dependent lookup at
// instantiation, so this file compiles against a librwkv without it (the batched tests then run the sequences one
// by one and say so).
template <class Ctx>
concept HasDecodeBatch = requires(Ctx* ctx, rwkv_state* const* states, const int32_t* tokens, size_t n, float* l) {
    { rwkv_decode_batch(ctx, states, tokens, n, l, n) } -> std::same_as<rwkv_status>;
};

template <class Ctx>
rwkv_status decode_batch(Ctx* ctx, rwkv_state* const* states, const int32_t* tokens, size_t n, float* logits,
                         size_t n_logits) {
    if constexpr (HasDecodeBatch<Ctx>)
        return rwkv_decode_batch(ctx, states, tokens, n, logits, n_logits);
    else
        return RWKV_STATUS_UNSUPPORTED;
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct ModelPtr {
    rwkv_model* p = nullptr;
    ~ModelPtr() { rwkv_model_free(p); }
};
struct ContextPtr {
    rwkv_context* p = nullptr;
    ~ContextPtr() { rwkv_context_free(p); }
};
struct StatePtr {
    rwkv_state* p = nullptr;
    StatePtr() = default;
    StatePtr(StatePtr&& o) noexcept : p(o.p) { o.p = nullptr; }
    StatePtr& operator=(StatePtr&&) = delete;
    ~StatePtr() { rwkv_state_free(p); }
};

// The thread count the library uses for n_threads = 0, from rwkv_system_info ("... cpu threads N ...").
int library_default_threads() {
    std::string info = rwkv_system_info();
    size_t at = info.find("cpu threads ");
    if (at != std::string::npos) {
        int n = std::atoi(info.c_str() + at + 12);
        if (n > 0) return n;
    }
    return int(std::max(1u, std::thread::hardware_concurrency()));
}

std::string size_label(const ModelDesc& d) {
    if (d.source.path.empty()) {
        std::string s = d.source.preset;
        for (char& ch : s) ch = char(std::toupper(static_cast<unsigned char>(ch)));
        return s == "TINY" ? "tiny" : s;
    }
    const double n = double(d.info.n_params);
    char buf[32];
    if (n >= 1e8)
        std::snprintf(buf, sizeof buf, n >= 1e10 ? "%.0fB" : n >= 1e9 ? "%.1fB" : "%.2fB", n / 1e9);
    else if (n >= 1e6)
        std::snprintf(buf, sizeof buf, "%.0fM", n / 1e6);
    else
        std::snprintf(buf, sizeof buf, "%.0fK", n / 1e3);
    return buf;
}

std::shared_ptr<ModelDesc> load_model(const ModelSource& src, const Options& o, ModelPtr& model) {
    auto desc = std::make_shared<ModelDesc>();
    desc->source = src;
    rwkv_model_params mp = rwkv_model_default_params();
    mp.backend = o.backend;
    mp.device = o.device;
    auto t0 = Clock::now();
    if (src.path.empty()) {
        rwkv_synthetic_params sp = rwkv_synthetic_default_params();
        sp.preset = src.preset.c_str();
        sp.dtype = src.dtype;
        sp.ffn_sparsity = float(o.ffn_sparsity);
        sp.seed = o.seed;
        rwkv::check(rwkv_model_load_synthetic(&sp, &mp, &model.p));
        desc->synthetic_sparsity = o.ffn_sparsity;
    } else {
        rwkv::check(rwkv_model_load(src.path.c_str(), &mp, &model.p));
    }
    desc->load_seconds = seconds_since(t0);
    rwkv::check(rwkv_model_get_info(model.p, &desc->info));
    rwkv::check(rwkv_model_get_memory(model.p, &desc->memory));
    if (desc->info.ffn_sparsity >= 0) {
        desc->ffn_sparsity = desc->info.ffn_sparsity;
        desc->sparsity_source = "library";
    } else if (o.ffn_sparsity >= 0) {
        desc->ffn_sparsity = o.ffn_sparsity;
        desc->sparsity_source = "given";
    }
    desc->filename = src.label();
    desc->backend = desc->info.backend == RWKV_BACKEND_CUDA ? "CUDA" : "CPU";
    std::string dt = dtype_name(desc->info.weight_dtype);
    for (char& ch : dt) ch = char(std::toupper(static_cast<unsigned char>(ch)));
    desc->type = "rwkv7 " + size_label(*desc) + " " + dt;
    spdlog::info("{}: {} ({} parameters, {}) loaded in {:.2f} s on {}", desc->filename, desc->type,
                 format_params(desc->info.n_params), format_size(desc->info.n_bytes), desc->load_seconds,
                 desc->backend);
    return desc;
}

// Everything one model's tests share: the context for the current thread count, random tokens, the states after
// `depth` prompt tokens (computed once per depth, then copied into the test's states).
class ModelBench {
  public:
    ModelBench(const Options& o, const RunInfo& run, std::shared_ptr<const ModelDesc> desc, rwkv_model* model)
        : o_(o), run_(run), desc_(std::move(desc)), model_(model), cost_(cost_model(desc_->info)), rng_(o.seed) {}

    void set_threads(int threads) {
        ctx_.reset();
        rwkv_context_params cp = rwkv_context_default_params();
        cp.n_threads = threads;
        int max_batch = 1;
        for (int b : o_.batch) max_batch = std::max(max_batch, b);
        cp.max_seq_tokens = std::max(cp.max_seq_tokens, max_batch);  // one forward for a whole decode batch
        ctx_ = std::make_unique<ContextPtr>();
        rwkv::check(rwkv_context_init(model_, &cp, &ctx_->p));
        threads_ = threads > 0 ? threads : library_default_threads();
    }

    rwkv_context* context() const { return ctx_->p; }

    TestResult prompt_test(int n_prompt) {
        TestResult r = new_result("pp" + std::to_string(n_prompt));
        r.n_prompt = n_prompt;
        std::vector<int32_t> tokens = random_tokens(size_t(n_prompt));
        std::vector<float> logits(size_t(desc_->info.n_vocab));
        StatePtr state = new_state();
        auto once = [&] {
            rwkv::check(rwkv_state_reset(state.p));
            auto t0 = Clock::now();
            rwkv::check(rwkv_eval(ctx_->p, state.p, tokens.data(), tokens.size(), RWKV_LOGITS_LAST, logits.data(),
                                  logits.size()));
            return seconds_since(t0);
        };
        if (o_.warmup) once();
        for (int i = 0; i < o_.repetitions; i++) add_sample(r, once(), n_prompt);
        finish(r, double(n_prompt));
        prefill_ts_ = std::max(prefill_ts_, r.median_ts);
        const double flops = prompt_flops(cost_, n_prompt) / n_prompt;
        r.flops_per_token = flops;
        r.tflops = flops * r.median_ts / 1e12;
        return r;
    }

    TestResult gen_test(int n_gen, int batch, int depth) {
        const bool batched = batch > 1 && have_decode_batch();
        std::string name = "tg" + std::to_string(n_gen);
        if (batch > 1) name += " b" + std::to_string(batch) + (batched ? "" : " seq");
        if (depth > 0) name += " @ d" + std::to_string(depth);
        TestResult r = new_result(name);
        r.n_gen = n_gen;
        r.n_batch = batch;
        r.n_depth = depth;
        r.batch_mode = batch == 1 ? BatchMode::Single : batched ? BatchMode::Batched : BatchMode::Sequential;

        const rwkv_state* start = depth_state(depth);
        std::vector<StatePtr> states;
        std::vector<rwkv_state*> handles;
        for (int b = 0; b < batch; b++) {
            states.push_back(new_state());
            handles.push_back(states.back().p);
        }
        const size_t V = size_t(desc_->info.n_vocab);
        std::vector<int32_t> tokens = random_tokens(size_t(n_gen) * size_t(batch));
        std::vector<float> logits(V * size_t(batch));
        auto once = [&](int steps) {
            for (rwkv_state* s : handles) rwkv::check(start ? rwkv_state_copy(s, start) : rwkv_state_reset(s));
            auto t0 = Clock::now();
            for (int step = 0; step < steps; step++) {
                const int32_t* tok = tokens.data() + size_t(step) * size_t(batch);
                if (batch == 1) {
                    rwkv::check(rwkv_decode(ctx_->p, handles[0], tok[0], logits.data(), V));
                } else if (batched) {
                    rwkv::check(
                        decode_batch(ctx_->p, handles.data(), tok, size_t(batch), logits.data(), logits.size()));
                } else {
                    for (int b = 0; b < batch; b++)
                        rwkv::check(rwkv_decode(ctx_->p, handles[size_t(b)], tok[b], logits.data() + size_t(b) * V, V));
                }
            }
            return seconds_since(t0);
        };
        // Warm-up: a few steps, enough to touch every weight and buffer once (llama-bench warms up with one).
        if (o_.warmup) once(std::min(n_gen, 4));
        for (int i = 0; i < o_.repetitions; i++) add_sample(r, once(n_gen), double(n_gen) * batch);
        finish(r, double(n_gen) * batch);
        r.ms_per_step = r.median_ns / 1e6 / n_gen;
        const double step_bytes = decode_step_bytes(cost_, batch, batched, desc_->ffn_sparsity);
        r.bytes_per_token = step_bytes / batch;
        r.gbps = step_bytes * n_gen / (r.median_ns / 1e9) / 1e9;
        if (run_.peak_gbs > 0) r.peak_pct = *r.gbps / run_.peak_gbs * 100;
        return r;
    }

  private:
    TestResult new_result(std::string name) {
        TestResult r;
        r.model = desc_;
        r.name = std::move(name);
        r.n_threads = threads_;
        r.test_time = utc_now();
        return r;
    }

    static void add_sample(TestResult& r, double seconds, double tokens) {
        r.samples_ns.push_back(seconds * 1e9);
        r.samples_ts.push_back(tokens / seconds);
    }

    static void finish(TestResult& r, double tokens) {
        Summary ns = summarize(r.samples_ns), ts = summarize(r.samples_ts);
        r.avg_ns = ns.mean;
        r.stddev_ns = ns.sd;
        r.median_ns = ns.median;
        r.avg_ts = ts.mean;
        r.stddev_ts = ts.sd;
        r.median_ts = ts.median;
        r.ms_per_token = 1000.0 / r.median_ts;
        r.peak_rss = peak_rss_bytes();
    }

    StatePtr new_state() {
        StatePtr s;
        rwkv::check(rwkv_state_init(model_, &s.p));
        return s;
    }

    std::vector<int32_t> random_tokens(size_t n) {
        std::uniform_int_distribution<int32_t> dist(0, desc_->info.n_vocab - 1);
        std::vector<int32_t> t(n);
        for (auto& x : t) x = dist(rng_);
        return t;
    }

    // The state after `depth` random prompt tokens, prefilled once (untimed, but logged).
    const rwkv_state* depth_state(int depth) {
        if (depth <= 0) return nullptr;
        auto it = depth_states_.find(depth);
        if (it != depth_states_.end()) return it->second.p;
        StatePtr s = new_state();
        std::vector<int32_t> tokens = random_tokens(size_t(depth));
        const double estimate = prefill_ts_ > 0 ? depth / prefill_ts_ : 0;
        if (estimate > 60)
            spdlog::warn(
                "prefilling {} tokens for the depth tests: about {:.0f} min at the measured prefill speed "
                "(-d 0 skips the depth tests)",
                depth, estimate / 60);
        else
            spdlog::info("prefilling {} tokens for the depth tests", depth);
        auto t0 = Clock::now();
        rwkv::check(rwkv_eval(ctx_->p, s.p, tokens.data(), tokens.size(), RWKV_LOGITS_NONE, nullptr, 0));
        const double sec = seconds_since(t0);
        spdlog::info("prefilled {} tokens in {:.1f} s ({:.1f} t/s)", depth, sec, depth / sec);
        return depth_states_.emplace(depth, std::move(s)).first->second.p;
    }

    const Options& o_;
    const RunInfo& run_;
    std::shared_ptr<const ModelDesc> desc_;
    rwkv_model* model_;
    CostModel cost_;
    std::mt19937_64 rng_;
    std::unique_ptr<ContextPtr> ctx_;
    int threads_ = 0;
    double prefill_ts_ = 0;  // the fastest prefill measured so far, for the depth prefill's time estimate
    std::map<int, StatePtr> depth_states_;
};

// The % column's denominator when --peak-gbs is not given: measured on a CPU, the data sheet's on a GPU.
void settle_peak(const Options& o, RunInfo& run, const ModelDesc& d) {
    if (!run.peak_source.empty()) return;
    if (o.peak_gbs) {
        run.peak_gbs = *o.peak_gbs;
        run.peak_source = run.peak_gbs > 0 ? "given" : "none";
        return;
    }
    if (d.info.backend == RWKV_BACKEND_CUDA) {
        run.peak_gbs = gpu_spec_bandwidth_gbs(run.env.gpu_info);
        run.peak_source = run.peak_gbs > 0 ? "spec" : "none";
        if (run.peak_gbs <= 0)
            spdlog::warn("no data-sheet bandwidth known for '{}': pass --peak-gbs for the % peak column",
                         run.env.gpu_info);
        return;
    }
    const int threads = std::max(1, run.env.cpu_threads);
    spdlog::info("measuring the streaming-read bandwidth (1 GiB, {} threads) for the % peak column", threads);
    ReadBandwidth bw = measure_read_bandwidth_isolated(size_t(1) << 30, threads, 3);
    if (bw.median_gbs > 0) {
        run.peak_gbs = bw.median_gbs;
        run.peak_source = "measured";
    } else {
        run.peak_source = "none";
        spdlog::warn("could not measure the memory bandwidth: pass --peak-gbs for the % peak column");
    }
}

}  // namespace

bool have_decode_batch() {
    return HasDecodeBatch<rwkv_context>;
}

std::vector<TestResult> run_benchmarks(const Options& o, RunInfo& run, Printer& printer) {
    std::vector<TestResult> all;
    bool begun = false;
    for (const ModelSource& src : o.models) {
        ModelPtr model;
        reset_peak_rss();  // the previous model is freed: each model's peak RSS is its own
        std::shared_ptr<ModelDesc> desc = load_model(src, o, model);
        bool has_tg = false;
        for (int n : o.n_gen) has_tg |= n > 0;
        if (has_tg) settle_peak(o, run, *desc);
        if (!begun) {
            printer.begin(run);
            begun = true;
        }
        ModelBench bench(o, run, desc, model.p);
        auto emit = [&](TestResult r) {
            printer.row(run, r);
            all.push_back(std::move(r));
        };
        for (int threads : o.threads) {
            bench.set_threads(threads);
            if (desc->scratch_bytes == 0) {  // the first context's scratch: its size does not depend on threads
                rwkv_memory_info mem;
                rwkv::check(rwkv_context_get_memory(bench.context(), &mem));
                desc->scratch_bytes = mem.scratch_bytes;
                if (mem.backend == RWKV_BACKEND_CUDA)
                    spdlog::info(
                        "{}: {} on {}: weights {:.1f} MiB, context scratch {:.1f} MiB, state {:.2f} MiB, "
                        "CUDA graphs {}",
                        desc->filename, desc->type, mem.device_name, mem.weight_bytes / 1048576.0,
                        mem.scratch_bytes / 1048576.0, mem.state_bytes / 1048576.0, mem.cuda_graphs ? "on" : "off");
            }
            for (int n : o.n_prompt)
                if (n > 0) {
                    spdlog::info("{}: pp{} ...", desc->filename, n);
                    emit(bench.prompt_test(n));
                }
            for (int n : o.n_gen) {
                if (n <= 0) continue;
                for (int b : o.batch)
                    for (int d : o.depth) {
                        spdlog::info("{}: tg{} b{} d{} ...", desc->filename, n, b, d);
                        emit(bench.gen_test(n, b, d));
                    }
            }
        }
    }
    if (!begun) printer.begin(run);
    printer.end(run, all);
    return all;
}

}  // namespace rwkv_bench
