// rwkv-bench: the shared types of the runner (runner.cpp), the cost model (cost.cpp) and the printers (output.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "env.h"
#include "rwkv/rwkv.h"

namespace rwkv_bench {

// ---- what to run

struct ModelSource {
    std::string path;    // a checkpoint, or "" for a synthetic model
    std::string preset;  // synthetic preset ("tiny", "0.1b", ...)
    rwkv_dtype dtype = RWKV_DTYPE_BF16;
    std::string label() const { return path.empty() ? "synthetic:" + preset : path; }
};

struct Options {
    std::vector<ModelSource> models;
    std::vector<int> n_prompt;  // pp tests (0 entries are skipped)
    std::vector<int> n_gen;     // tg tests
    std::vector<int> batch;     // sequences decoded together in tg tests
    std::vector<int> depth;     // tokens prefilled before each tg test
    std::vector<int> threads;   // 0 = the library's default (all cores)
    int repetitions = 5;
    bool warmup = true;
    rwkv_backend backend = RWKV_BACKEND_AUTO;
    int device = 0;                  // CUDA device ordinal
    double ffn_sparsity = -1;        // < 0: not given
    std::optional<double> peak_gbs;  // --peak-gbs; 0 turns the % column off
    uint64_t seed = 1;
    std::string output = "md";  // md | csv | json
};

class Printer;

// ---- the model as the benchmark sees it

struct ModelDesc {
    ModelSource source;
    rwkv_model_info info{};
    rwkv_memory_info memory{};  // the model's weights and one state in the backend's memory
    int64_t scratch_bytes = 0;  // a context's scratch (the first context made for the model)
    std::string filename;       // model_filename: the path, or "synthetic:0.1b"
    std::string type;           // model_type: "rwkv7 0.1B BF16"
    std::string backend;        // "CPU" / "CUDA" (the backend actually used)
    double load_seconds = 0;
    double synthetic_sparsity = -1;  // what the synthetic weights were biased to (< 0: natural / a file)
    // The fraction of FFN value rows the decode GB/s counts as not read, and where it comes from: "library"
    // (rwkv_model_info.ffn_sparsity, measured by librwkv on a synthetic model's weights), "given" (--ffn-sparsity),
    // "dense" (neither: every row counted).
    double ffn_sparsity = 0;
    std::string sparsity_source = "dense";
};

// Bytes and FLOPs per token, from the model's shapes (cost.cpp).
struct CostModel {
    double weight_bytes = 0;     // every weight read by one decode step, FFN value dense (embedding: one row)
    double ffn_value_bytes = 0;  // of which the FFN value matrices (L·F·C elements)
    double emb_row_bytes = 0;    // one embedding row, read per sequence
    double state_rw_bytes = 0;   // one sequence's state, read and written
    double matmul_flops = 0;     // 2 × the parameters a prompt token multiplies (all but embedding and head)
    double wkv_flops = 0;        // the WKV recurrence per token
    double head_flops = 0;       // 2·V·C: the logits of one token
};
CostModel cost_model(const rwkv_model_info& info);

// Bytes read (and state bytes written) by one decode step of `batch` sequences: the weights once per step when
// `batched` (FFN value rows: the union of the rows the sequences need, 1 − s^B of them), else once per sequence.
double decode_step_bytes(const CostModel& c, int batch, bool batched, double sparsity);
// FLOPs of a prompt of n tokens whose last token's logits are computed.
double prompt_flops(const CostModel& c, int n_prompt);

// ---- results

enum class BatchMode { Single, Batched, Sequential };

struct TestResult {
    std::shared_ptr<const ModelDesc> model;
    std::string name;  // "pp512", "tg128", "tg128 b64", "tg128 @ d8192"
    int n_prompt = 0, n_gen = 0, n_batch = 1, n_depth = 0, n_threads = 0;
    BatchMode batch_mode = BatchMode::Single;
    std::vector<double> samples_ns;  // one per repetition: the whole test
    std::vector<double> samples_ts;  // tokens per second (all sequences together)
    double avg_ns = 0, stddev_ns = 0, median_ns = 0;
    double avg_ts = 0, stddev_ts = 0, median_ts = 0;
    double ms_per_token = 0;  // 1000 / median t/s
    double ms_per_step = 0;   // tg: one decode step (every sequence one token)
    // decode: effective bandwidth from the median time
    std::optional<double> bytes_per_token, gbps, peak_pct;
    // prefill: FLOPs per token and the rate
    std::optional<double> flops_per_token, tflops;
    std::string test_time;
    int64_t peak_rss = 0;
};

// How the run was set up, shared by every row.
struct RunInfo {
    Environment env;
    double peak_gbs = 0;      // 0: unknown, no % column
    std::string peak_source;  // "measured" (streaming read, N threads), "given", "spec" (GPU data sheet), ""
    int repetitions = 0;
    bool warmup = true;
    bool batched_api = false;  // rwkv_decode_batch was available at build time
    uint64_t seed = 1;
};

// ---- running (runner.cpp)

// Whether this build of librwkv declares rwkv_decode_batch (else batched tests decode the sequences one by one).
bool have_decode_batch();

// Loads each model in turn, runs every test on it and hands each result to `printer` as soon as it is measured.
// Throws rwkv::Error when the library fails.
std::vector<TestResult> run_benchmarks(const Options& opts, RunInfo& run, Printer& printer);

// ---- statistics

struct Summary {
    double mean = 0, sd = 0, median = 0;
};
Summary summarize(const std::vector<double>& v);  // sd: sample standard deviation (n − 1), 0 for one sample

// ---- output

class Printer {
  public:
    virtual ~Printer() = default;
    virtual void begin(const RunInfo&) {}
    virtual void row(const RunInfo& run, const TestResult& r) = 0;
    virtual void end(const RunInfo& run, const std::vector<TestResult>& all) {}
};
// format: md | csv | json (stdout); a non-empty json_file also writes the JSON array there.
std::unique_ptr<Printer> make_printer(const std::string& format, const std::string& json_file = "");

// Human-readable sizes as llama-bench prints them.
std::string format_size(int64_t bytes);  // "364.00 MiB", "2.84 GiB"
std::string format_params(int64_t n);    // "191.04 M", "1.53 B"
const char* dtype_name(rwkv_dtype t);    // "f32", "f16", "bf16"

}  // namespace rwkv_bench
