// The only implementation of include/rwkv/rwkv.h: argument checks, then the C++ core; exceptions become status
// codes plus a thread-local message in guard().
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <type_traits>

#include "backend/cpu_backend.h"
#include "backend/cuda/cuda.h"
#include "backend/device.h"
#include "common/error.h"
#include "common/log.h"
#include "common/thread_pool.h"
#include "io/checkpoint.h"
#include "kernels/cpu/cpu_features.h"
#include "model/generate.h"
#include "model/rwkv7.h"
#include "model/state.h"
#include "model/synthetic.h"
#include "model/weights.h"
#include "rwkv/rwkv.h"
#include "text/sampler.h"
#include "text/tokenizer.h"
#include "text/utf8.h"
#include "text/vocab_path.h"

struct rwkv_model {
    rwkv::LoadedModel m;
    double ffn_sparsity = -1;  // measured at creation for synthetic models
    rwkv_backend backend = RWKV_BACKEND_CPU;
    int n_threads = 1;
    int device = -1;                                            // CUDA ordinal; -1 on the CPU
    rwkv::DType backend_dtype = rwkv::DType::F32;               // the matrices' dtype in the backend's memory
    rwkv::ModelTensors tensors;                                 // what the forward reads, in the backend's memory
    std::unique_ptr<rwkv::cuda::DeviceWeights> device_weights;  // CUDA: owns the device copies `tensors` points to

    rwkv::MemoryKind memory() const {
        return backend == RWKV_BACKEND_CUDA ? rwkv::MemoryKind::Cuda : rwkv::MemoryKind::Host;
    }
};

struct rwkv_context {
    const rwkv_model* model;
    std::unique_ptr<rwkv::Backend> backend;
    rwkv::Scratch scratch;
    bool graphs;  // replay decode steps from CUDA graphs
};

// The state's floats (RecurrentState::data layout) in the model's backend memory: host memory on the CPU, device memory
// on CUDA. File formats go through a host rwkv::RecurrentState.
struct rwkv_state {
    const rwkv_model* model;
    rwkv::ModelConfig config;
    rwkv::Buffer data;

    size_t size() const { return size_t(config.state_floats()); }
    size_t bytes() const { return size() * sizeof(float); }
    float* base() const { return data.as<float>(); }
};

struct rwkv_tokenizer {
    std::unique_ptr<rwkv::WorldTokenizer> t;
};

struct rwkv_sampler {
    rwkv::TokenSampler s;
};

namespace {

thread_local std::string t_last_error;

rwkv_status fail(rwkv_status status, const std::string& message) {
    t_last_error = message;
    return status;
}

template <typename F>
rwkv_status guard(F&& body) {
    try {
        body();
        return RWKV_STATUS_OK;
    } catch (const rwkv::Error& e) {
        return fail(e.status(), e.what());
    } catch (const std::bad_alloc&) {
        return fail(RWKV_STATUS_OUT_OF_MEMORY, "out of memory");
    } catch (const std::exception& e) {
        return fail(RWKV_STATUS_INTERNAL, std::string("internal error: ") + e.what());
    } catch (...) {
        return fail(RWKV_STATUS_INTERNAL, "internal error: unknown exception");
    }
}

void require(bool ok, const char* what) {
    if (!ok) rwkv::throw_invalid(what);
}

rwkv_dtype to_c(rwkv::DType t) {
    switch (t) {
        case rwkv::DType::F32:
            return RWKV_DTYPE_F32;
        case rwkv::DType::F16:
            return RWKV_DTYPE_F16;
        case rwkv::DType::BF16:
            return RWKV_DTYPE_BF16;
    }
    return RWKV_DTYPE_F32;
}

void check_tokens(const rwkv_model& model, const int32_t* tokens, size_t n) {
    const int V = model.m.config.n_vocab;
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            rwkv::throw_invalid("token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                                " is out of range: the model's vocabulary has " + std::to_string(V) + " rows");
}

void check_same_model(const rwkv_state* state, const rwkv_model* model, const char* what) {
    if (state->config.fingerprint() != model->m.config.fingerprint())
        rwkv::throw_invalid(std::string(what) + ": the state belongs to a model of another shape");
}

std::string memory_name(rwkv::MemoryKind kind, int device) {
    return kind == rwkv::MemoryKind::Cuda ? "CUDA device " + std::to_string(device) + " memory" : "host memory";
}

// A state runs only with a context whose backend works in the state's memory.
void check_state_memory(const rwkv_state* state, const rwkv_context& ctx, const char* what) {
    const rwkv::Backend& be = *ctx.backend;
    if (state->data.kind() != be.memory() ||
        (be.memory() == rwkv::MemoryKind::Cuda && state->data.device() != be.device()))
        rwkv::throw_invalid(std::string(what) + ": the state lives in " +
                            memory_name(state->data.kind(), state->data.device()) + " but the context runs on " +
                            be.name() + " (" + memory_name(be.memory(), be.device()) +
                            "); make the state from this context's model, or copy it into one with rwkv_state_copy");
}

// Host image of a state (for files and rwkv_state_get_data), and back.
rwkv::RecurrentState to_host(const rwkv_state& st) {
    rwkv::RecurrentState h(st.config);
    rwkv::memory_to_host(h.data.data(), st.base(), st.bytes(), st.data.kind(), st.data.device());
    return h;
}
void from_host(rwkv_state& st, const rwkv::RecurrentState& h) {
    rwkv::memory_from_host(st.base(), h.data.data(), st.bytes(), st.data.kind(), st.data.device());
}

rwkv::SamplerParams to_cpp(const rwkv_sampler_params& p) {
    rwkv::SamplerParams q;
    q.temperature = p.temperature;
    q.top_p = p.top_p;
    q.top_k = p.top_k;
    q.min_p = p.min_p;
    q.presence_penalty = p.presence_penalty;
    q.frequency_penalty = p.frequency_penalty;
    q.penalty_decay = p.penalty_decay;
    q.seed = p.seed;
    return q;
}

// One step on a context (binds the states, uploads the tokens, graph replay for decode, logits to the host).
void step(rwkv_context& ctx, float* const* bases, int B, const int32_t* tokens, int T, rwkv::LogitRows rows,
          float* logits) {
    const rwkv_model& m = *ctx.model;
    rwkv::rwkv7_step(m.m.config, m.tensors, *ctx.backend, ctx.scratch, bases, B, tokens, T, rows, logits, ctx.graphs);
}

// One eval of n tokens on a context, chunked like rwkv_eval, writing the last token's logits to `logits`; with
// keep_on_device, `logits` is null and a device backend keeps them in its scratch (for device sampling).
void eval_last(rwkv_context& ctx, rwkv_state& state, const int32_t* tokens, size_t n, float* logits,
               bool keep_on_device = false) {
    const size_t chunk = size_t(ctx.scratch.max_T);
    float* bases[1] = {state.base()};
    for (size_t begin = 0; begin < n; begin += chunk) {
        const int T = int(std::min(chunk, n - begin));
        const bool last = begin + T == n;
        step(ctx, bases, 1, tokens + begin, T,
             last && (logits || keep_on_device) ? rwkv::LogitRows::Last : rwkv::LogitRows::None, logits);
    }
}

}  // namespace

// ---- model load options: device, weight dtype conversion, progress callback with cancel --------------------------
namespace {

// Reports load progress (clamped to be non-decreasing) and turns a cancel into RWKV_STATUS_CANCELLED.
class LoadProgress {
  public:
    LoadProgress(const rwkv_model_params& p, const char* function)
        : callback_(p.progress_callback), user_data_(p.progress_user_data), function_(function) {}

    void report(float fraction) {
        last_ = std::clamp(fraction, last_, 1.0f);
        if (callback_ && callback_(last_, user_data_) != 0)
            throw rwkv::Error(RWKV_STATUS_CANCELLED, std::string(function_) + ": cancelled by the progress callback " +
                                                         "at " + std::to_string(int(last_ * 100.0f)) + "%");
    }

  private:
    rwkv_progress_callback callback_;
    void* user_data_;
    const char* function_;
    float last_ = 0.0f;
};

// An enum field as the int a C caller stored: C allows any int there, C++ calls a value outside the enum's range
// undefined, so it is read through memcpy before the range check.
template <typename E>
int enum_value(const E& e) {
    std::underlying_type_t<E> v;
    std::memcpy(&v, &e, sizeof v);
    return int(v);
}

void check_model_params(const rwkv_model_params& p, const char* function) {
    const std::string f(function);
    require(p.n_threads >= 0, (f + ": n_threads must be >= 0").c_str());
    const int backend = enum_value(p.backend), dtype = enum_value(p.weight_dtype);
    require(backend >= RWKV_BACKEND_AUTO && backend <= RWKV_BACKEND_CUDA,
            (f + ": unknown backend " + std::to_string(backend)).c_str());
    require(p.device >= 0, (f + ": device must be >= 0").c_str());
    require(dtype >= RWKV_DTYPE_AUTO && dtype <= RWKV_DTYPE_BF16,
            (f + ": unknown weight_dtype " + std::to_string(dtype)).c_str());
}

rwkv::DType dtype_from_c(rwkv_dtype t) {
    return t == RWKV_DTYPE_F16 ? rwkv::DType::F16 : t == RWKV_DTYPE_BF16 ? rwkv::DType::BF16 : rwkv::DType::F32;
}

// The backend a load runs on: the one asked for; for AUTO, $RWKV_BACKEND when set, else CUDA when compiled in and
// the device is present, else the CPU. An explicit CUDA that cannot run is UNSUPPORTED, with the reason.
rwkv_backend resolve_backend(const rwkv_model_params& p, const char* function) {
    const std::string f(function);
    rwkv_backend b = p.backend;
    if (b == RWKV_BACKEND_AUTO) {
        const char* env = std::getenv("RWKV_BACKEND");
        const std::string e = env ? env : "";
        if (e == "cpu")
            b = RWKV_BACKEND_CPU;
        else if (e == "cuda")
            b = RWKV_BACKEND_CUDA;
        else if (!e.empty() && e != "auto")
            rwkv::throw_invalid(f + ": the environment variable RWKV_BACKEND is '" + e +
                                "': expected cpu, cuda or auto");
    }
    if (b == RWKV_BACKEND_AUTO)
        return rwkv::cuda_compiled() && p.device < rwkv::cuda_device_count() ? RWKV_BACKEND_CUDA : RWKV_BACKEND_CPU;
    if (b == RWKV_BACKEND_CUDA) {
        if (!rwkv::cuda_compiled())
            rwkv::throw_unsupported(f + ": the CUDA backend was asked for, but this build of librwkv has no CUDA " +
                                    "(built without nvcc, or with -DRWKV_CUDA=OFF); use the CPU backend");
        const int n = rwkv::cuda_device_count();
        if (n == 0)
            rwkv::throw_unsupported(f + ": the CUDA backend was asked for, but no CUDA device is visible (no GPU, " +
                                    "no driver, or CUDA_VISIBLE_DEVICES hides them); use the CPU backend");
        if (p.device >= n)
            rwkv::throw_unsupported(f + ": CUDA device " + std::to_string(p.device) + " was asked for, but only " +
                                    std::to_string(n) + " device(s) are visible");
    }
    return b;
}

// After the host model is loaded: the tensors the forward reads. CPU: views of the host weights (converted to
// params.weight_dtype first). CUDA: one upload, matrices converted on the device to F16 (AUTO) or the dtype asked.
void place_weights(rwkv_model& model, const rwkv_model_params& p, rwkv_backend backend, LoadProgress& progress,
                   float begin, float end);

// Converts every large matrix (the ones used in place from the file) to `want` unless it is RWKV_DTYPE_AUTO. The
// copies are owned by the model's checkpoint; progress goes from `begin` to `end` in proportion to the elements.
void apply_weight_dtype(rwkv::LoadedModel& m, rwkv_dtype want, LoadProgress& progress, float begin, float end) {
    if (want == RWKV_DTYPE_AUTO) return;
    const rwkv::DType to = dtype_from_c(want);
    std::vector<rwkv::WeightMatrix*> matrices;
    for (rwkv::LayerWeights& l : m.weights.layers)
        for (rwkv::WeightMatrix* w : {&l.w1, &l.w2, &l.a1, &l.a2, &l.v1, &l.v2, &l.g1, &l.g2, &l.receptance, &l.key,
                                      &l.value, &l.output, &l.ffn_key, &l.ffn_value})
            if (w->data) matrices.push_back(w);
    matrices.push_back(&m.weights.head);
    int64_t total = 0, done = 0;
    for (const rwkv::WeightMatrix* w : matrices) total += int64_t(w->n_out) * w->n_in;
    for (rwkv::WeightMatrix* w : matrices) {
        const int64_t n = int64_t(w->n_out) * w->n_in;
        if (w->dtype != to) {
            void* copy = m.checkpoint->own(size_t(n) * rwkv::dtype_size(to));
            rwkv::convert_floats(w->data, w->dtype, copy, to, n);
            w->data = copy;
            w->dtype = to;
        }
        done += n;
        progress.report(begin + (end - begin) * float(double(done) / double(std::max<int64_t>(total, 1))));
    }
    m.weight_dtype = to;
}

void place_weights(rwkv_model& model, const rwkv_model_params& p, rwkv_backend backend, LoadProgress& progress,
                   float begin, float end) {
    model.backend = backend;
    if (backend != RWKV_BACKEND_CUDA) {
        apply_weight_dtype(model.m, p.weight_dtype, progress, begin, end);
        model.backend_dtype = model.m.weight_dtype;
        model.tensors = rwkv::host_tensors(model.m.weights);
        return;
    }
    model.device = p.device;
    const rwkv::DType dtype = p.weight_dtype == RWKV_DTYPE_AUTO ? rwkv::DType::F16 : dtype_from_c(p.weight_dtype);
    model.device_weights = rwkv::cuda::upload_weights(model.m, dtype, p.device,
                                                      [&](float f) { progress.report(begin + (end - begin) * f); });
    model.backend_dtype = dtype;
    model.tensors = model.device_weights->tensors;
}

}  // namespace

extern "C" {

const char* rwkv_status_string(rwkv_status status) {
    // A C caller may pass any int; in C++ a value outside the enumerators' range is not a valid rwkv_status, so
    // the switch reads the bits as an int.
    int value;
    std::memcpy(&value, &status, sizeof value);
    static_assert(sizeof(rwkv_status) == sizeof(int));
    switch (value) {
        case RWKV_STATUS_OK:
            return "ok";
        case RWKV_STATUS_INVALID_ARGUMENT:
            return "invalid argument";
        case RWKV_STATUS_IO_ERROR:
            return "i/o error";
        case RWKV_STATUS_FORMAT_ERROR:
            return "format error";
        case RWKV_STATUS_UNSUPPORTED:
            return "unsupported";
        case RWKV_STATUS_OUT_OF_MEMORY:
            return "out of memory";
        case RWKV_STATUS_BACKEND_ERROR:
            return "backend error";
        case RWKV_STATUS_INTERNAL:
            return "internal error";
        case RWKV_STATUS_CANCELLED:
            return "cancelled";
    }
    return "unknown status";
}

const char* rwkv_last_error_message(void) {
    return t_last_error.c_str();
}

void rwkv_log_set(rwkv_log_callback callback, void* user_data) {
    rwkv::log_set(callback, user_data);
}

const char* rwkv_version(void) {
    return RWKV_VERSION_STRING;
}

const char* rwkv_system_info(void) {
    static const std::string info = [] {
        std::string s = std::string("librwkv ") + RWKV_VERSION_STRING + " | compiler " + __VERSION__ +
#ifdef RWKV_BUILD_INFO
                        " | build " + RWKV_BUILD_INFO +
#endif
                        " | cpu threads " + std::to_string(rwkv::default_thread_count()) + ", kernels " +
                        rwkv::cpu_isa_name(rwkv::cpu_isa_selected()) + " | CUDA ";
        if (!rwkv::cuda_compiled()) return s + "not compiled in";
        int n = rwkv::cuda_device_count();
        s += "compiled in, " + std::to_string(n) + " device(s)";
        if (n > 0) s += " (" + rwkv::cuda_device_description() + ")";
        return s;
    }();
    return info.c_str();
}

rwkv_model_params rwkv_model_default_params(void) {
    rwkv_model_params p;
    p.backend = RWKV_BACKEND_AUTO;
    p.n_threads = 0;
    p.device = 0;
    p.weight_dtype = RWKV_DTYPE_AUTO;
    p.progress_callback = nullptr;
    p.progress_user_data = nullptr;
    return p;
}

rwkv_status rwkv_model_load(const char* path, const rwkv_model_params* params, rwkv_model** out_model) {
    return guard([&] {
        if (out_model) *out_model = nullptr;
        require(path && out_model, "rwkv_model_load: path and out_model must not be NULL");
        rwkv_model_params p = params ? *params : rwkv_model_default_params();
        check_model_params(p, "rwkv_model_load");
        const rwkv_backend backend = resolve_backend(p, "rwkv_model_load");
        LoadProgress progress(p, "rwkv_model_load");
        progress.report(0.0f);
        auto model = std::make_unique<rwkv_model>();
        std::unique_ptr<rwkv::Checkpoint> checkpoint = rwkv::Checkpoint::open(path);
        progress.report(0.1f);
        model->m = rwkv::load_model(std::move(checkpoint));
        progress.report(0.5f);
        place_weights(*model, p, backend, progress, 0.5f, 0.99f);
        model->n_threads = p.n_threads > 0 ? p.n_threads : rwkv::default_thread_count();
        progress.report(1.0f);
        *out_model = model.release();
    });
}

rwkv_synthetic_params rwkv_synthetic_default_params(void) {
    rwkv_synthetic_params s;
    s.preset = "0.1b";
    s.dtype = RWKV_DTYPE_BF16;
    s.ffn_sparsity = -1.0f;
    s.seed = 1;
    s.n_vocab = 0;
    return s;
}

rwkv_status rwkv_model_load_synthetic(const rwkv_synthetic_params* synthetic, const rwkv_model_params* params,
                                      rwkv_model** out_model) {
    return guard([&] {
        if (out_model) *out_model = nullptr;
        require(out_model, "rwkv_model_load_synthetic: out_model must not be NULL");
        rwkv_synthetic_params sp = synthetic ? *synthetic : rwkv_synthetic_default_params();
        require(sp.preset, "rwkv_model_load_synthetic: preset must not be NULL");
        require(sp.dtype >= RWKV_DTYPE_F32 && sp.dtype <= RWKV_DTYPE_BF16, "rwkv_model_load_synthetic: unknown dtype");
        rwkv_model_params p = params ? *params : rwkv_model_default_params();
        check_model_params(p, "rwkv_model_load_synthetic");
        const rwkv_backend backend = resolve_backend(p, "rwkv_model_load_synthetic");
        LoadProgress progress(p, "rwkv_model_load_synthetic");
        progress.report(0.0f);
        auto model = std::make_unique<rwkv_model>();
        model->n_threads = p.n_threads > 0 ? p.n_threads : rwkv::default_thread_count();
        rwkv::SyntheticSpec spec;
        spec.preset = sp.preset;
        spec.dtype = sp.dtype == RWKV_DTYPE_F32   ? rwkv::DType::F32
                     : sp.dtype == RWKV_DTYPE_F16 ? rwkv::DType::F16
                                                  : rwkv::DType::BF16;
        spec.ffn_sparsity = sp.ffn_sparsity;
        spec.seed = sp.seed;
        spec.n_vocab = sp.n_vocab;
        rwkv::ThreadPool pool(model->n_threads);
        model->m = rwkv::load_model(rwkv::make_synthetic_checkpoint(spec, &pool, &model->ffn_sparsity));
        progress.report(0.9f);
        place_weights(*model, p, backend, progress, 0.9f, 0.99f);
        progress.report(1.0f);
        *out_model = model.release();
    });
}

void rwkv_model_free(rwkv_model* model) {
    delete model;
}

rwkv_status rwkv_model_get_info(const rwkv_model* model, rwkv_model_info* out) {
    return guard([&] {
        require(model && out, "rwkv_model_get_info: model and out_info must not be NULL");
        const rwkv::ModelConfig& c = model->m.config;
        out->format =
            model->m.checkpoint->format() == rwkv::CheckpointFormat::Pth ? RWKV_FORMAT_PTH : RWKV_FORMAT_SAFETENSORS;
        out->weight_dtype = to_c(model->backend_dtype);
        out->backend = model->backend;
        out->n_layer = c.n_layer;
        out->n_embd = c.n_embd;
        out->n_head = c.n_head;
        out->head_size = c.head_size;
        out->n_vocab = c.n_vocab;
        out->n_ffn = c.n_ffn;
        out->d_decay = c.d_decay;
        out->d_aaa = c.d_aaa;
        out->d_value = c.d_value;
        out->d_gate = c.d_gate;
        out->n_params = model->m.n_params;
        out->n_bytes = model->m.n_bytes;
        out->state_bytes = c.state_floats() * int64_t(sizeof(float));
        out->ffn_sparsity = model->ffn_sparsity;
    });
}

namespace {

void fill_memory(const rwkv_model& model, rwkv_memory_info* out) {
    std::memset(out, 0, sizeof *out);
    out->backend = model.backend;
    out->device = model.backend == RWKV_BACKEND_CUDA ? model.device : -1;
    out->weight_dtype = to_c(model.backend_dtype);
    out->state_bytes = model.m.config.state_floats() * int64_t(sizeof(float));
    if (model.backend == RWKV_BACKEND_CUDA) {
        out->weight_bytes = model.device_weights->bytes();
        const rwkv::cuda::DeviceInfo d = rwkv::cuda::device_info(model.device);
        std::snprintf(out->device_name, sizeof out->device_name, "%s", d.name.c_str());
        out->device_free_bytes = d.free_bytes;
        out->device_total_bytes = d.total_bytes;
    } else {
        const rwkv::Weights& w = model.m.weights;
        int64_t bytes = int64_t(w.emb.size() + w.ln_out_w.size() + w.ln_out_b.size()) * 4;
        auto matrix = [](const rwkv::WeightMatrix& x) {
            return x.data ? int64_t(x.n_out) * x.n_in * int64_t(rwkv::dtype_size(x.dtype)) : 0;
        };
        bytes += matrix(w.head);
        for (const rwkv::LayerWeights& l : w.layers) {
#define RWKV_COUNT_VECTOR(name) bytes += int64_t(l.name.size()) * 4;
#define RWKV_COUNT_MATRIX(name) bytes += matrix(l.name);
            RWKV_LAYER_VECTORS(RWKV_COUNT_VECTOR)
            RWKV_LAYER_MATRICES(RWKV_COUNT_MATRIX)
#undef RWKV_COUNT_VECTOR
#undef RWKV_COUNT_MATRIX
        }
        out->weight_bytes = bytes;
    }
}

}  // namespace

rwkv_status rwkv_model_get_memory(const rwkv_model* model, rwkv_memory_info* out) {
    return guard([&] {
        require(model && out, "rwkv_model_get_memory: model and out must not be NULL");
        fill_memory(*model, out);
    });
}

rwkv_status rwkv_context_get_memory(const rwkv_context* ctx, rwkv_memory_info* out) {
    return guard([&] {
        require(ctx && out, "rwkv_context_get_memory: ctx and out must not be NULL");
        fill_memory(*ctx->model, out);
        out->scratch_bytes = int64_t(ctx->scratch.storage.bytes()) + rwkv::cuda::backend_workspace_bytes(*ctx->backend);
        out->cuda_graphs = ctx->graphs && rwkv::cuda::backend_graphs_active(*ctx->backend) ? 1 : 0;
    });
}

rwkv_context_params rwkv_context_default_params(void) {
    rwkv_context_params p;
    p.n_threads = 0;
    p.max_seq_tokens = 256;
    return p;
}

rwkv_status rwkv_context_init(const rwkv_model* model, const rwkv_context_params* params, rwkv_context** out_ctx) {
    return guard([&] {
        if (out_ctx) *out_ctx = nullptr;
        require(model && out_ctx, "rwkv_context_init: model and out_ctx must not be NULL");
        rwkv_context_params p = params ? *params : rwkv_context_default_params();
        require(p.n_threads >= 0, "rwkv_context_init: n_threads must be >= 0");
        require(p.max_seq_tokens >= 1 && p.max_seq_tokens <= 65536,
                "rwkv_context_init: max_seq_tokens must be in [1, 65536]");
        int threads = p.n_threads > 0 ? p.n_threads : model->n_threads;
        const rwkv::ModelConfig& c = model->m.config;
        if (model->backend == RWKV_BACKEND_CUDA) {
            const char* g = std::getenv("RWKV_CUDA_GRAPHS");
            const bool graphs = !(g && std::strcmp(g, "0") == 0);
            std::unique_ptr<rwkv::Backend> be =
                rwkv::cuda::make_backend(model->device, c, model->tensors, p.max_seq_tokens, graphs);
            *out_ctx = new rwkv_context{
                model, std::move(be),
                rwkv::Scratch(c, p.max_seq_tokens, rwkv::MemoryKind::Cuda, model->device, /*device_logits=*/true),
                graphs};
            return;
        }
        *out_ctx = new rwkv_context{model, std::make_unique<rwkv::CpuBackend>(threads, rwkv::cpu_reference_requested()),
                                    rwkv::Scratch(c, p.max_seq_tokens), false};
    });
}

void rwkv_context_free(rwkv_context* ctx) {
    delete ctx;
}

rwkv_status rwkv_state_init(const rwkv_model* model, rwkv_state** out_state) {
    return guard([&] {
        if (out_state) *out_state = nullptr;
        require(model && out_state, "rwkv_state_init: model and out_state must not be NULL");
        const rwkv::ModelConfig& c = model->m.config;
        *out_state = new rwkv_state{model, c,
                                    rwkv::Buffer(model->memory(), model->device,
                                                 size_t(c.state_floats()) * sizeof(float), "a recurrent state")};
    });
}

void rwkv_state_free(rwkv_state* state) {
    delete state;
}

rwkv_status rwkv_state_reset(rwkv_state* state) {
    return guard([&] {
        require(state, "rwkv_state_reset: state must not be NULL");
        rwkv::memory_fill_zero(state->base(), state->bytes(), state->data.kind(), state->data.device());
    });
}

rwkv_status rwkv_state_copy(rwkv_state* dst, const rwkv_state* src) {
    return guard([&] {
        require(dst && src, "rwkv_state_copy: dst and src must not be NULL");
        check_same_model(dst, src->model, "rwkv_state_copy");
        // Host <-> device too (a state of another model of the same shape, on another backend).
        const bool cuda = dst->data.kind() == rwkv::MemoryKind::Cuda || src->data.kind() == rwkv::MemoryKind::Cuda;
        const int device = dst->data.kind() == rwkv::MemoryKind::Cuda ? dst->data.device() : src->data.device();
        rwkv::memory_copy(dst->base(), src->base(), dst->bytes(),
                          cuda ? rwkv::MemoryKind::Cuda : rwkv::MemoryKind::Host, device);
    });
}

size_t rwkv_state_size(const rwkv_state* state) {
    return state ? state->size() : 0;
}

rwkv_status rwkv_state_get_data(const rwkv_state* state, float* out, size_t n_floats) {
    return guard([&] {
        require(state && out, "rwkv_state_get_data: state and out must not be NULL");
        require(n_floats == state->size(), "rwkv_state_get_data: n_floats must equal rwkv_state_size()");
        rwkv::memory_to_host(out, state->base(), state->bytes(), state->data.kind(), state->data.device());
    });
}

rwkv_status rwkv_state_set_data(rwkv_state* state, const float* data, size_t n_floats) {
    return guard([&] {
        require(state && data, "rwkv_state_set_data: state and data must not be NULL");
        require(n_floats == state->size(), "rwkv_state_set_data: n_floats must equal rwkv_state_size()");
        rwkv::memory_from_host(state->base(), data, state->bytes(), state->data.kind(), state->data.device());
    });
}

rwkv_status rwkv_state_save(const rwkv_state* state, const char* path) {
    return guard([&] {
        require(state && path, "rwkv_state_save: state and path must not be NULL");
        rwkv::save_state(to_host(*state), path);
    });
}

rwkv_status rwkv_state_load(rwkv_state* state, const char* path) {
    return guard([&] {
        require(state && path, "rwkv_state_load: state and path must not be NULL");
        rwkv::RecurrentState h(state->config);  // the state is untouched unless the whole file is good
        rwkv::load_state(h, path);
        from_host(*state, h);
    });
}

rwkv_status rwkv_state_serialize(const rwkv_state* state, void* buffer, size_t capacity, size_t* n_bytes) {
    return guard([&] {
        require(state && n_bytes && (buffer || capacity == 0), "rwkv_state_serialize: NULL argument");
        std::vector<uint8_t> bytes = rwkv::serialize_state(to_host(*state));
        *n_bytes = bytes.size();
        if (!buffer && capacity == 0) return;  // size query
        if (capacity < bytes.size())
            rwkv::throw_invalid("rwkv_state_serialize: buffer too small: " + std::to_string(bytes.size()) +
                                " bytes needed, capacity " + std::to_string(capacity));
        std::memcpy(buffer, bytes.data(), bytes.size());
    });
}

rwkv_status rwkv_state_deserialize(rwkv_state* state, const void* buffer, size_t n_bytes) {
    return guard([&] {
        require(state && (buffer || n_bytes == 0), "rwkv_state_deserialize: NULL argument");
        rwkv::RecurrentState h(state->config);
        rwkv::deserialize_state(h, static_cast<const uint8_t*>(buffer), n_bytes, "state buffer");
        from_host(*state, h);
    });
}

rwkv_status rwkv_state_load_tuning(rwkv_state* state, const char* path) {
    return guard([&] {
        require(state && path, "rwkv_state_load_tuning: state and path must not be NULL");
        rwkv::RecurrentState h(state->config);
        rwkv::load_tuning_state(h, path);
        from_host(*state, h);
    });
}

rwkv_status rwkv_eval(rwkv_context* ctx, rwkv_state* state, const int32_t* tokens, size_t n_tokens,
                      rwkv_logits_mode mode, float* logits, size_t n_logits) {
    return guard([&] {
        require(ctx && state, "rwkv_eval: ctx and state must not be NULL");
        require(tokens || n_tokens == 0, "rwkv_eval: tokens must not be NULL");
        require(enum_value(mode) >= RWKV_LOGITS_NONE && enum_value(mode) <= RWKV_LOGITS_ALL,
                "rwkv_eval: unknown logits mode");
        const rwkv_model& model = *ctx->model;
        check_same_model(state, &model, "rwkv_eval");
        check_state_memory(state, *ctx, "rwkv_eval");
        const size_t V = size_t(model.m.config.n_vocab);
        const size_t need = mode == RWKV_LOGITS_ALL ? n_tokens * V : mode == RWKV_LOGITS_LAST ? V : 0;
        require(mode == RWKV_LOGITS_NONE || logits, "rwkv_eval: logits must not be NULL for this mode");
        require(n_logits >= need, "rwkv_eval: the logits buffer is too small");
        require(n_tokens > 0 || mode == RWKV_LOGITS_NONE, "rwkv_eval: no tokens to produce logits for");
        check_tokens(model, tokens, n_tokens);
        const size_t chunk = size_t(ctx->scratch.max_T);
        float* bases[1] = {state->base()};
        for (size_t begin = 0; begin < n_tokens; begin += chunk) {
            const int T = int(std::min(chunk, n_tokens - begin));
            const bool last_chunk = begin + T == n_tokens;
            rwkv::LogitRows rows = mode == RWKV_LOGITS_ALL                  ? rwkv::LogitRows::All
                                   : mode == RWKV_LOGITS_LAST && last_chunk ? rwkv::LogitRows::Last
                                                                            : rwkv::LogitRows::None;
            float* out = mode == RWKV_LOGITS_ALL ? logits + begin * V : logits;
            step(*ctx, bases, 1, tokens + begin, T, rows, out);
        }
    });
}

rwkv_status rwkv_decode(rwkv_context* ctx, rwkv_state* state, int32_t token, float* logits, size_t n_logits) {
    return rwkv_eval(ctx, state, &token, 1, logits ? RWKV_LOGITS_LAST : RWKV_LOGITS_NONE, logits, n_logits);
}

rwkv_status rwkv_decode_batch(rwkv_context* ctx, rwkv_state* const* states, const int32_t* tokens, size_t n_seq,
                              float* logits, size_t n_logits) {
    return guard([&] {
        require(ctx && (states || n_seq == 0) && (tokens || n_seq == 0), "rwkv_decode_batch: NULL argument");
        const rwkv_model& model = *ctx->model;
        const size_t V = size_t(model.m.config.n_vocab);
        require(!logits || n_logits >= n_seq * V, "rwkv_decode_batch: the logits buffer is too small");
        check_tokens(model, tokens, n_seq);
        std::vector<float*> batch(n_seq);
        for (size_t i = 0; i < n_seq; i++) {
            require(states[i], "rwkv_decode_batch: a state is NULL");
            check_same_model(states[i], &model, "rwkv_decode_batch");
            check_state_memory(states[i], *ctx, "rwkv_decode_batch");
            batch[i] = states[i]->base();
        }
        std::vector<float*> sorted = batch;
        std::sort(sorted.begin(), sorted.end());
        require(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(),
                "rwkv_decode_batch: the same state appears twice in the batch");
        const size_t group = size_t(ctx->scratch.max_T);  // sequences per forward: one row each
        for (size_t begin = 0; begin < n_seq; begin += group) {
            const int B = int(std::min(group, n_seq - begin));
            step(*ctx, batch.data() + begin, B, tokens + begin, 1,
                 logits ? rwkv::LogitRows::All : rwkv::LogitRows::None, logits ? logits + begin * V : nullptr);
        }
    });
}

rwkv_status rwkv_tokenizer_load(const char* path, rwkv_tokenizer** out_tokenizer) {
    return guard([&] {
        require(out_tokenizer, "rwkv_tokenizer_load: out_tokenizer must not be NULL");
        *out_tokenizer = nullptr;
        *out_tokenizer = new rwkv_tokenizer{rwkv::WorldTokenizer::load(path ? std::string(path) : rwkv::find_vocab())};
    });
}

void rwkv_tokenizer_free(rwkv_tokenizer* tokenizer) {
    delete tokenizer;
}

size_t rwkv_tokenizer_vocab_size(const rwkv_tokenizer* tokenizer) {
    return tokenizer ? tokenizer->t->vocab_size() : 0;
}

rwkv_status rwkv_tokenizer_encode(const rwkv_tokenizer* tokenizer, const char* text, size_t n_bytes, int32_t* ids,
                                  size_t capacity, size_t* n_ids) {
    return guard([&] {
        require(tokenizer && n_ids && (text || n_bytes == 0) && (ids || capacity == 0),
                "rwkv_tokenizer_encode: NULL argument");
        std::vector<int32_t> out = tokenizer->t->encode(std::string_view(text ? text : "", n_bytes));
        *n_ids = out.size();
        if (!ids && capacity == 0) return;  // size query
        if (capacity < out.size())
            rwkv::throw_invalid("rwkv_tokenizer_encode: buffer too small: " + std::to_string(out.size()) +
                                " ids needed, capacity " + std::to_string(capacity));
        std::copy(out.begin(), out.end(), ids);
    });
}

rwkv_status rwkv_tokenizer_decode(const rwkv_tokenizer* tokenizer, const int32_t* ids, size_t n_ids, char* text,
                                  size_t capacity, size_t* n_bytes) {
    return guard([&] {
        require(tokenizer && n_bytes && (ids || n_ids == 0) && (text || capacity == 0),
                "rwkv_tokenizer_decode: NULL argument");
        std::string out = tokenizer->t->decode(ids, n_ids);
        *n_bytes = out.size();
        if (!text && capacity == 0) return;  // size query
        if (capacity < out.size())
            rwkv::throw_invalid("rwkv_tokenizer_decode: buffer too small: " + std::to_string(out.size()) +
                                " bytes needed, capacity " + std::to_string(capacity));
        std::copy(out.begin(), out.end(), text);
    });
}

size_t rwkv_utf8_check(const char* text, size_t n_bytes) {
    if (!text) return 0;
    size_t at = rwkv::first_invalid_utf8(std::string_view(text, n_bytes));
    return at == std::string_view::npos ? n_bytes : at;
}

rwkv_sampler_params rwkv_sampler_default_params(void) {
    rwkv::SamplerParams d;
    rwkv_sampler_params p;
    p.temperature = d.temperature;
    p.top_p = d.top_p;
    p.top_k = d.top_k;
    p.min_p = d.min_p;
    p.presence_penalty = d.presence_penalty;
    p.frequency_penalty = d.frequency_penalty;
    p.penalty_decay = d.penalty_decay;
    p.seed = d.seed;
    return p;
}

rwkv_status rwkv_sampler_init(const rwkv_sampler_params* params, int n_vocab, rwkv_sampler** out_sampler) {
    return guard([&] {
        require(out_sampler, "rwkv_sampler_init: out_sampler must not be NULL");
        *out_sampler = nullptr;
        require(n_vocab > 0, "rwkv_sampler_init: n_vocab must be > 0");
        rwkv_sampler_params p = params ? *params : rwkv_sampler_default_params();
        *out_sampler = new rwkv_sampler{rwkv::TokenSampler(to_cpp(p), n_vocab)};
    });
}

void rwkv_sampler_free(rwkv_sampler* sampler) {
    delete sampler;
}

rwkv_status rwkv_sampler_set_params(rwkv_sampler* sampler, const rwkv_sampler_params* params) {
    return guard([&] {
        require(sampler && params, "rwkv_sampler_set_params: NULL argument");
        sampler->s.set_params(to_cpp(*params));
    });
}

rwkv_status rwkv_sampler_set_banned(rwkv_sampler* sampler, const int32_t* ids, size_t n_ids) {
    return guard([&] {
        require(sampler && (ids || n_ids == 0), "rwkv_sampler_set_banned: NULL argument");
        sampler->s.set_banned_tokens(std::vector<int32_t>(ids, ids + n_ids));
    });
}

rwkv_status rwkv_sampler_set_bias(rwkv_sampler* sampler, const int32_t* ids, const float* bias, size_t n) {
    return guard([&] {
        require(sampler && ((ids && bias) || n == 0), "rwkv_sampler_set_bias: NULL argument");
        std::vector<std::pair<int32_t, float>> b;
        for (size_t i = 0; i < n; i++) b.emplace_back(ids[i], bias[i]);
        sampler->s.set_logit_bias(std::move(b));
    });
}

rwkv_status rwkv_sampler_sample(rwkv_sampler* sampler, float* logits, size_t n_logits, int32_t* out_token) {
    return guard([&] {
        require(sampler && logits && out_token, "rwkv_sampler_sample: NULL argument");
        require(n_logits == size_t(sampler->s.n_vocab()),
                "rwkv_sampler_sample: n_logits must equal the n_vocab "
                "the sampler was made for");
        *out_token = sampler->s.sample(logits);
    });
}

rwkv_status rwkv_sampler_accept(rwkv_sampler* sampler, const rwkv_tokenizer* tokenizer, int32_t token) {
    return guard([&] {
        require(sampler, "rwkv_sampler_accept: sampler must not be NULL");
        require(token >= 0 && token < sampler->s.n_vocab(), "rwkv_sampler_accept: token out of range");
        sampler->s.accept(token, tokenizer ? tokenizer->t->token_bytes(token) : std::string_view());
    });
}

rwkv_status rwkv_sampler_reset(rwkv_sampler* sampler) {
    return guard([&] {
        require(sampler, "rwkv_sampler_reset: sampler must not be NULL");
        sampler->s.reset();
    });
}

rwkv_generate_params rwkv_generate_default_params(void) {
    static const int32_t kEndOfText = 0;
    rwkv_generate_params p;
    p.max_tokens = 256;
    p.stop_strings = nullptr;
    p.n_stop_strings = 0;
    p.stop_tokens = &kEndOfText;
    p.n_stop_tokens = 1;
    p.cancel = nullptr;
    return p;
}

rwkv_status rwkv_generate(rwkv_context* ctx, rwkv_state* state, const rwkv_tokenizer* tokenizer, rwkv_sampler* sampler,
                          const int32_t* prompt, size_t n_prompt, const rwkv_generate_params* params,
                          rwkv_token_callback callback, void* user_data, rwkv_generate_result* out_result) {
    return guard([&] {
        require(ctx && state && sampler && prompt, "rwkv_generate: NULL argument");
        const rwkv_model& model = *ctx->model;
        check_same_model(state, &model, "rwkv_generate");
        check_state_memory(state, *ctx, "rwkv_generate");
        check_tokens(model, prompt, n_prompt);
        require(sampler->s.n_vocab() == model.m.config.n_vocab,
                "rwkv_generate: the sampler was made for another vocabulary size");
        rwkv_generate_params p = params ? *params : rwkv_generate_default_params();
        rwkv::GenerateParams gp;
        gp.max_tokens = p.max_tokens;
        require(p.stop_strings || p.n_stop_strings == 0, "rwkv_generate: stop_strings is NULL");
        require(p.stop_tokens || p.n_stop_tokens == 0, "rwkv_generate: stop_tokens is NULL");
        for (size_t i = 0; i < p.n_stop_strings; i++) {
            require(p.stop_strings[i], "rwkv_generate: a stop string is NULL");
            gp.stop_strings.emplace_back(p.stop_strings[i]);
        }
        gp.stop_tokens.assign(p.stop_tokens, p.stop_tokens + p.n_stop_tokens);
        if (p.cancel) gp.cancelled = [flag = p.cancel] { return *flag != 0; };
        auto eval = [&](const int32_t* tokens, int T, float* logits) { eval_last(*ctx, *state, tokens, T, logits); };
        // A device backend keeps the logits in its scratch and samples there: a step copies one token id back.
        rwkv::GenerateStep device_step;
        if (ctx->scratch.logits) {
            device_step.eval = [&](const int32_t* tokens, int T) { eval_last(*ctx, *state, tokens, T, nullptr, true); };
            device_step.sample = [&](rwkv::TokenSampler& s) {
                return rwkv::cuda::sample(*ctx->backend, ctx->scratch.logits, model.m.config.n_vocab, s);
            };
        }
        rwkv::TokenCallback on_token;
        if (callback)
            on_token = [&](int32_t tok, std::string_view text) {
                return callback(tok, text.data(), text.size(), user_data) == 0;
            };
        const rwkv::WorldTokenizer* tok = tokenizer ? tokenizer->t.get() : nullptr;
        const std::vector<int32_t> prompt_ids(prompt, prompt + n_prompt);
        rwkv::GenerateResult r =
            ctx->scratch.logits
                ? rwkv::generate(device_step, tok, sampler->s, prompt_ids, gp, on_token)
                : rwkv::generate(eval, model.m.config.n_vocab, tok, sampler->s, prompt_ids, gp, on_token);
        if (out_result) {
            out_result->n_prompt_tokens = size_t(r.n_prompt);
            out_result->n_generated_tokens = r.tokens.size();
            out_result->stop_reason = static_cast<rwkv_stop_reason>(int(r.reason));
            out_result->prompt_seconds = r.prompt_seconds;
            out_result->generate_seconds = r.generate_seconds;
        }
    });
}

}  // extern "C"
