// The printers: a llama-bench style markdown table, CSV, and a JSON array of one object per test (bench/schema.json).
#include <nlohmann/json.hpp>

#include <cinttypes>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include "bench.h"

namespace rwkv_bench {
namespace {

using Json = nlohmann::ordered_json;

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string fmt_ms(double ms) {
    return fmt(ms >= 1 ? "%.2f" : ms >= 0.01 ? "%.3f" : "%.4f", ms);
}

Json opt(const std::optional<double>& v) {
    return v ? Json(*v) : Json(nullptr);
}

const char* batch_mode_name(BatchMode m) {
    return m == BatchMode::Single ? "single" : m == BatchMode::Batched ? "batched" : "sequential";
}

// One test as a flat object: llama-bench's field names where it has the quantity, ours after.
Json to_json(const RunInfo& run, const TestResult& r) {
    const ModelDesc& m = *r.model;
    const Environment& e = run.env;
    Json j;
    // the build and the machine (llama-bench: build_commit, cpu_info, gpu_info, backends, test_time)
    j["build_commit"] = e.build_commit;
    j["build_type"] = e.build_type;
    j["librwkv_version"] = e.librwkv_version;
    j["compiler"] = e.compiler;
    j["os"] = e.os;
    j["system_info"] = e.system_info;
    j["cpu_info"] = e.cpu_info;
    j["cpu_flags"] = e.cpu_flags;
    j["gpu_info"] = e.gpu_info;
    j["gpu_driver"] = e.gpu_driver;
    j["cuda_runtime"] = e.cuda_runtime;
    j["test_time"] = r.test_time;
    // the model (llama-bench: model_filename, model_type, model_size, model_n_params)
    j["backends"] = m.backend;
    j["backend"] = m.info.backend == RWKV_BACKEND_CUDA ? "cuda" : "cpu";
    j["model_filename"] = m.filename;
    j["model_type"] = m.type;
    j["model_size"] = m.info.n_bytes;
    j["model_n_params"] = m.info.n_params;
    j["weight_type"] = dtype_name(m.info.weight_dtype);
    j["n_layer"] = m.info.n_layer;
    j["n_embd"] = m.info.n_embd;
    j["n_ffn"] = m.info.n_ffn;
    j["n_vocab"] = m.info.n_vocab;
    j["state_bytes"] = m.info.state_bytes;
    // where the model ran and what it held there (rwkv_model_get_memory / rwkv_context_get_memory)
    j["device"] = m.memory.device;
    j["device_name"] = m.memory.device_name;
    j["backend_weight_bytes"] = m.memory.weight_bytes;
    j["backend_scratch_bytes"] = m.scratch_bytes;
    j["device_total_bytes"] = m.memory.device_total_bytes;
    // the test (llama-bench: n_threads, n_batch, n_prompt, n_gen, n_depth)
    j["test"] = r.name;
    j["n_threads"] = r.n_threads;
    j["n_batch"] = r.n_batch;
    j["batch_mode"] = batch_mode_name(r.batch_mode);
    j["n_prompt"] = r.n_prompt;
    j["n_gen"] = r.n_gen;
    j["n_depth"] = r.n_depth;
    j["n_reps"] = run.repetitions;
    j["seed"] = run.seed;
    j["warmup"] = run.warmup;
    // the times (llama-bench: avg_ns, stddev_ns, avg_ts, stddev_ts, samples_ns, samples_ts)
    j["avg_ns"] = r.avg_ns;
    j["stddev_ns"] = r.stddev_ns;
    j["median_ns"] = r.median_ns;
    j["avg_ts"] = r.avg_ts;
    j["stddev_ts"] = r.stddev_ts;
    j["median_ts"] = r.median_ts;
    j["ms_per_token"] = r.ms_per_token;
    j["ms_per_step"] = r.n_gen > 0 ? Json(r.ms_per_step) : Json(nullptr);
    // what RWKV users need: bandwidth and FLOP rate against the device
    j["bytes_per_token"] = opt(r.bytes_per_token);
    j["gbps"] = opt(r.gbps);
    j["peak_gbs"] = run.peak_gbs > 0 ? Json(run.peak_gbs) : Json(nullptr);
    j["peak_source"] = run.peak_source.empty() ? "none" : run.peak_source;
    j["peak_pct"] = opt(r.peak_pct);
    j["flops_per_token"] = opt(r.flops_per_token);
    j["tflops"] = opt(r.tflops);
    j["ffn_sparsity"] = m.ffn_sparsity;
    j["ffn_sparsity_source"] = m.sparsity_source;
    j["synthetic_ffn_sparsity"] =
        m.source.path.empty() && m.synthetic_sparsity >= 0 ? Json(m.synthetic_sparsity) : Json(nullptr);
    j["peak_rss_bytes"] = r.peak_rss;
    j["samples_ns"] = r.samples_ns;
    j["samples_ts"] = r.samples_ts;
    return j;
}

std::string peak_note(const RunInfo& run) {
    if (run.peak_gbs <= 0) return "";
    std::string src = run.peak_source == "measured"
                          ? "measured: streaming read, " + std::to_string(run.env.cpu_threads) + " threads"
                      : run.peak_source == "spec" ? "the GPU's data sheet"
                                                  : "--peak-gbs";
    return fmt("%.1f", run.peak_gbs) + " GB/s (" + src + ")";
}

std::string sparsity_note(const ModelDesc& m) {
    if (m.sparsity_source == "dense")
        return "FFN value rows counted dense (a checkpoint: librwkv reports no sparsity, and no --ffn-sparsity was "
               "given)";
    return "FFN value rows counted at sparsity " + fmt("%.3f", m.ffn_sparsity) +
           (m.sparsity_source == "library" ? " (measured by librwkv on the synthetic weights)" : " (--ffn-sparsity)") +
           ", assuming the backend reads only the rows of non-zero ReLU² activations";
}

class MarkdownPrinter : public Printer {
  public:
    void row(const RunInfo& run, const TestResult& r) override {
        const ModelDesc& m = *r.model;
        if (!header_) {
            tera_ = m.info.backend == RWKV_BACKEND_CUDA;
            std::printf("| model | size | params | backend | threads | test | t/s | ms/tok | GB/s | %% peak | %s |\n",
                        tera_ ? "TFLOPS" : "GFLOPS");
            std::printf("| --- | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n");
            header_ = true;
        }
        std::string ms = fmt_ms(r.ms_per_token);
        std::string gbps = r.gbps ? fmt("%.2f", *r.gbps) : "";
        std::string pct = r.peak_pct ? fmt("%.1f", *r.peak_pct) : "";
        std::string flops = r.tflops ? fmt(tera_ ? "%.2f" : "%.1f", *r.tflops * (tera_ ? 1 : 1000)) : "";
        std::printf("| %s | %s | %s | %s | %d | %s | %.2f ± %.2f | %s | %s | %s | %s |\n", m.type.c_str(),
                    format_size(m.info.n_bytes).c_str(), format_params(m.info.n_params).c_str(), m.backend.c_str(),
                    r.n_threads, r.name.c_str(), r.median_ts, r.stddev_ts, ms.c_str(), gbps.c_str(), pct.c_str(),
                    flops.c_str());
        std::fflush(stdout);
    }

    void end(const RunInfo& run, const std::vector<TestResult>& all) override {
        if (all.empty()) return;
        std::printf("\n");
        std::printf("t/s: median ± sd of %d run%s%s; ms/tok = 1000 / t/s.\n", run.repetitions,
                    run.repetitions == 1 ? "" : "s", run.warmup ? " after a warm-up" : " (no warm-up)");
        bool any_tg = false, any_seq = false;
        for (const TestResult& r : all) {
            any_tg |= r.n_gen > 0;
            any_seq |= r.batch_mode == BatchMode::Sequential;
        }
        if (any_tg) {
            std::printf(
                "tg: GB/s = bytes read per decode step / time: the weights (once per step for bN rows, whose FFN "
                "value rows are the union 1 - s^N of the rows each sequence needs), one embedding row and the state "
                "read + written per sequence.\n");
            if (run.peak_gbs > 0) std::printf("%% peak: of %s.\n", peak_note(run).c_str());
            if (any_seq)
                std::printf(
                    "\"seq\": this librwkv has no rwkv_decode_batch; the N sequences were decoded one after "
                    "another.\n");
        }
        std::printf("pp: %s = (2 × matrix parameters + WKV) FLOPs per token × t/s.\n", tera_ ? "TFLOPS" : "GFLOPS");
        // Constant speed at any depth: each decode test against its depth-0 twin.
        for (const TestResult& r : all) {
            if (r.n_gen == 0 || r.n_depth != 0) continue;
            std::string line;
            for (const TestResult& x : all)
                if (x.model == r.model && x.n_gen == r.n_gen && x.n_batch == r.n_batch && x.n_threads == r.n_threads &&
                    x.n_depth > 0)
                    line += ", d" + std::to_string(x.n_depth) + " " + fmt_ms(x.ms_per_step) + " (" +
                            fmt("%+.1f%%", (x.ms_per_step / r.ms_per_step - 1) * 100) + ")";
            if (!line.empty())
                std::printf("depth: %s %s, %d thread%s: ms per decode step at d0 %s%s.\n", r.model->type.c_str(),
                            r.name.c_str(), r.n_threads, r.n_threads == 1 ? "" : "s", fmt_ms(r.ms_per_step).c_str(),
                            line.c_str());
        }
        std::set<const ModelDesc*> seen;
        for (const TestResult& r : all) {
            const ModelDesc& m = *r.model;
            if (!seen.insert(&m).second) continue;
            int64_t rss = 0;
            for (const TestResult& x : all)
                if (x.model.get() == &m) rss = std::max(rss, x.peak_rss);
            std::printf("%s (%s): state %.2f MB per sequence (fp32), peak RSS %s", m.type.c_str(), m.filename.c_str(),
                        double(m.info.state_bytes) / 1e6, format_size(rss).c_str());
            if (m.source.path.empty())
                std::printf(", synthetic weights (seed %llu, FFN keys %s)", static_cast<unsigned long long>(run.seed),
                            m.synthetic_sparsity >= 0
                                ? ("biased to sparsity " + fmt("%.2f", m.synthetic_sparsity)).c_str()
                                : "natural");
            bool model_tg = false;
            for (const TestResult& x : all) model_tg |= x.model.get() == &m && x.n_gen > 0;
            if (model_tg) std::printf("; %s", sparsity_note(m).c_str());
            std::printf(".\n");
        }
        const Environment& e = run.env;
        std::string flags;
        for (const std::string& f : e.cpu_flags) flags += (flags.empty() ? "" : " ") + f;
        std::printf("build: %s (%s), librwkv %s; %s [%s]", e.build_commit.c_str(), e.build_type.c_str(),
                    e.librwkv_version.c_str(), e.cpu_info.c_str(), flags.c_str());
        if (!e.gpu_info.empty())
            std::printf("; %s, driver %s, CUDA %s", e.gpu_info.c_str(), e.gpu_driver.c_str(),
                        e.cuda_runtime.empty() ? "not compiled in" : e.cuda_runtime.c_str());
        std::printf("\n");
    }

  private:
    bool header_ = false;
    bool tera_ = false;
};

std::string csv_cell(const Json& v) {
    std::string s;
    if (v.is_null()) return "";
    if (v.is_string()) {
        s = v.get<std::string>();
    } else if (v.is_array()) {
        for (const Json& x : v) {
            if (!s.empty()) s.push_back(';');
            s.append(x.is_string() ? x.get<std::string>() : x.dump());
        }
    } else {
        s = v.dump();
    }
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
}

class CsvPrinter : public Printer {
  public:
    void row(const RunInfo& run, const TestResult& r) override {
        Json j = to_json(run, r);
        std::string line;
        if (!header_) {
            for (auto it = j.begin(); it != j.end(); ++it) {
                if (!line.empty()) line.push_back(',');
                line.append(it.key());
            }
            std::printf("%s\n", line.c_str());
            line.clear();
            header_ = true;
        }
        bool first = true;
        for (auto it = j.begin(); it != j.end(); ++it) {
            if (!first) line.push_back(',');
            line.append(csv_cell(it.value()));
            first = false;
        }
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);
    }

  private:
    bool header_ = false;
};

class JsonPrinter : public Printer {
  public:
    explicit JsonPrinter(std::string path = "") : path_(std::move(path)) {}
    void row(const RunInfo& run, const TestResult& r) override {
        rows_.push_back(to_json(run, r));
        if (!path_.empty()) write_file();  // after every test, so that an interrupted run keeps what it measured
    }
    void end(const RunInfo&, const std::vector<TestResult>&) override {
        if (!path_.empty()) return write_file();
        std::fputs((rows_.dump(2) + "\n").c_str(), stdout);
        std::fflush(stdout);
    }

  private:
    void write_file() const {
        const std::string text = rows_.dump(2) + "\n", tmp = path_ + ".tmp";
        std::FILE* f = std::fopen(tmp.c_str(), "w");
        bool ok = f && std::fputs(text.c_str(), f) >= 0;
        if (f) ok = std::fclose(f) == 0 && ok;
        if (!ok || std::rename(tmp.c_str(), path_.c_str()) != 0)
            throw std::runtime_error(path_ + ": cannot write the JSON results");
    }

    std::string path_;
    Json rows_ = Json::array();
};

// The table on stdout and the JSON array in a file (--json-file).
class TeePrinter : public Printer {
  public:
    TeePrinter(std::unique_ptr<Printer> a, std::unique_ptr<Printer> b) : a_(std::move(a)), b_(std::move(b)) {}
    void begin(const RunInfo& run) override {
        a_->begin(run);
        b_->begin(run);
    }
    void row(const RunInfo& run, const TestResult& r) override {
        a_->row(run, r);
        b_->row(run, r);
    }
    void end(const RunInfo& run, const std::vector<TestResult>& all) override {
        a_->end(run, all);
        b_->end(run, all);
    }

  private:
    std::unique_ptr<Printer> a_, b_;
};

}  // namespace

std::unique_ptr<Printer> make_printer(const std::string& format, const std::string& json_file) {
    std::unique_ptr<Printer> p;
    if (format == "csv")
        p = std::make_unique<CsvPrinter>();
    else if (format == "json")
        p = std::make_unique<JsonPrinter>();
    else
        p = std::make_unique<MarkdownPrinter>();
    if (json_file.empty()) return p;
    return std::make_unique<TeePrinter>(std::move(p), std::make_unique<JsonPrinter>(json_file));
}

std::string format_size(int64_t bytes) {
    const double b = double(bytes);
    if (b >= double(int64_t(1) << 30)) return fmt("%.2f GiB", b / double(int64_t(1) << 30));
    return fmt("%.2f MiB", b / double(1 << 20));
}

std::string format_params(int64_t n) {
    if (n >= 1000000000) return fmt("%.2f B", double(n) / 1e9);
    if (n >= 1000000) return fmt("%.2f M", double(n) / 1e6);
    return fmt("%.2f K", double(n) / 1e3);
}

const char* dtype_name(rwkv_dtype t) {
    return t == RWKV_DTYPE_F32 ? "f32" : t == RWKV_DTYPE_F16 ? "f16" : "bf16";
}

}  // namespace rwkv_bench
