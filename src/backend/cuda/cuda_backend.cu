// CudaBackend: the Backend ops of one context on one CUDA stream.
//
//   ops        each op is a launcher of kernels/cuda/launch.h on the context's stream (all pointers device).
//   matmul     T <= kMaxGemvT rows: rwkv::cuda::gemv (fp32 activations, weights converted in registers).
//              More rows: cublasGemmEx with the activations first converted to the weight dtype (f16 or bf16)
//              into a scratch buffer, fp32 accumulation and an fp32 output (precision: docs/cuda.md §Precision).
//   FFN value  matmul_sparse_input: the sparse GEMV (reads only the rows of non-zero ReLU² activations) up to
//              kSparseFfnMaxRows rows, then the dense paths above.
//   graphs     run_step captures a decode step once per key (batch size, logit rows) and replays it; the
//              inputs it reads (token ids, the state pointer table) sit at fixed addresses in the scratch and
//              are uploaded before the launch. A failed capture falls back to plain launches with one warning.
//   memory     every workspace is allocated here, at context creation: the GEMV partial sums, the cuBLAS
//              workspace (set on the handle, so cuBLAS never allocates during a capture), the activation
//              conversion buffer, pinned staging for uploads, and the sampling buffers.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "backend/cuda/cuda.h"
#include "common/error.h"
#include "common/log.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"
#include "text/sampler.h"

namespace rwkv::cuda {

namespace {

constexpr size_t kCublasWorkspaceBytes = size_t(32) << 20;  // cuBLAS's recommendation for Hopper
constexpr size_t kStagingBytes = size_t(256) << 10;         // pinned staging for the per-step uploads
constexpr size_t kMaxGraphs = 16;                           // captured decode steps kept per context (LRU)

const char* cublas_status_name(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS:
            return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED:
            return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED:
            return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE:
            return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH:
            return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_EXECUTION_FAILED:
            return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_NOT_SUPPORTED:
            return "CUBLAS_STATUS_NOT_SUPPORTED";
        default:
            return "cuBLAS error";
    }
}

#define RWKV_CUBLAS_CHECK(call)                                                                                        \
    do {                                                                                                               \
        cublasStatus_t rwkv_cublas_st_ = (call);                                                                       \
        if (rwkv_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                                                  \
            throw Error(                                                                                               \
                rwkv_cublas_st_ == CUBLAS_STATUS_ALLOC_FAILED ? RWKV_STATUS_OUT_OF_MEMORY : RWKV_STATUS_BACKEND_ERROR, \
                std::string("cuBLAS error in " #call " (" __FILE__ ":") + std::to_string(__LINE__) +                   \
                    "): " + cublas_status_name(rwkv_cublas_st_));                                                      \
    } while (0)

cudaDataType cuda_type(DType t) {
    return t == DType::F16 ? CUDA_R_16F : t == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

// Every matrix of the model, for sizing the workspaces.
std::vector<const WeightMatrix*> all_matrices(const ModelTensors& t) {
    std::vector<const WeightMatrix*> out = {&t.head};
    for (const LayerTensors& l : t.layers) {
#define RWKV_LIST_MATRIX(name) \
    if (l.name.data) out.push_back(&l.name);
        RWKV_LAYER_MATRICES(RWKV_LIST_MATRIX)
#undef RWKV_LIST_MATRIX
    }
    return out;
}

class CudaBackend final : public Backend {
  public:
    CudaBackend(int device, const ModelConfig& c, const ModelTensors& t, int max_T, bool graphs)
        : device_(device), graphs_(graphs) {
        try {
            init(c, t, max_T);
        } catch (...) {
            release();
            throw;
        }
    }

    ~CudaBackend() override { release(); }

    void init(const ModelConfig& c, const ModelTensors& t, int max_T) {
        const int device = device_;
        RWKV_CUDA_CHECK(cudaSetDevice(device));
        RWKV_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        RWKV_CUBLAS_CHECK(cublasCreate(&cublas_));
        RWKV_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
        RWKV_CUBLAS_CHECK(cublasSetPointerMode(cublas_, CUBLAS_POINTER_MODE_HOST));
        // GEMV partial sums: the largest any matrix needs at any T <= kMaxGemvT.
        size_t gemv_ws = 0, max_in = 0;
        bool low_precision = false;
        for (const WeightMatrix* w : all_matrices(t)) {
            for (int rows = 1; rows <= kMaxGemvT; rows++) gemv_ws = std::max(gemv_ws, gemv_workspace_bytes(*w, rows));
            max_in = std::max(max_in, size_t(w->n_in));
            low_precision |= w->dtype != DType::F32;
        }
        gemv_ws_ = Buffer(MemoryKind::Cuda, device, gemv_ws, "the GEMV workspace");
        if (max_T > kMaxGemvT) {
            cublas_ws_ = Buffer(MemoryKind::Cuda, device, kCublasWorkspaceBytes, "the cuBLAS workspace");
            RWKV_CUBLAS_CHECK(cublasSetWorkspace(cublas_, cublas_ws_.data(), cublas_ws_.bytes()));
            if (low_precision)  // activations converted to the weight dtype (2 bytes) before cuBLAS
                act_ = Buffer(MemoryKind::Cuda, device, size_t(max_T) * max_in * 2,
                              "the activation conversion buffer of the matrix products");
        }
        // Sampling: one row of V logits; bans + bias + penalties as edits (grown if ever too small).
        sample_ws_ = Buffer(MemoryKind::Cuda, device, sample_workspace_bytes(1, c.n_vocab), "the sampling workspace");
        small_ = Buffer(MemoryKind::Cuda, device, 256, "the sampling parameters");
        RWKV_CUDA_CHECK(cudaHostAlloc(&staging_, kStagingBytes, cudaHostAllocDefault));
        RWKV_CUDA_CHECK(cudaHostAlloc(&small_host_, 256, cudaHostAllocDefault));
        reserve_edits(size_t(2) * c.n_vocab);
    }

    void release() noexcept {
        cudaSetDevice(device_);
        if (stream_) cudaStreamSynchronize(stream_);
        for (auto& [key, g] : graphs_exec_) cudaGraphExecDestroy(g.exec);
        if (cublas_) cublasDestroy(cublas_);
        if (stream_) cudaStreamDestroy(stream_);
        if (staging_) cudaFreeHost(staging_);
        if (small_host_) cudaFreeHost(small_host_);
        if (edits_host_) cudaFreeHost(edits_host_);
        graphs_exec_.clear();
        cublas_ = nullptr;
        stream_ = nullptr;
        staging_ = small_host_ = nullptr;
        edits_host_ = nullptr;
        cudaGetLastError();
    }

    const char* name() const override { return "cuda"; }
    MemoryKind memory() const override { return MemoryKind::Cuda; }
    int device() const override { return device_; }

    // ---- ops
    void embed(const EmbedArgs& a) override { cuda::embed(a, stream_); }
    void layer_norm(const LayerNormArgs& a) override { cuda::layer_norm(a, stream_); }
    void token_shift(const TokenShiftArgs& a) override { cuda::token_shift(a, stream_); }
    void bias_act(const BiasActArgs& a) override { cuda::bias_act(a, stream_); }
    void key_prep(const KeyPrepArgs& a) override { cuda::key_prep(a, stream_); }
    void wkv7(const Wkv7Args& a) override { cuda::wkv7(a, stream_); }
    void time_mix_output(const TimeMixOutputArgs& a) override { cuda::time_mix_output(a, stream_); }

    void matmul(const MatmulArgs& a) override {
        if (a.T <= kMaxGemvT)
            gemv(a, false, gemv_ws_.as<float>(), gemv_ws_.bytes(), stream_);
        else
            gemm(a);
    }
    void matmul_sparse_input(const MatmulArgs& a) override {
        if (a.T <= kSparseFfnMaxRows && a.w->layout == WeightMatrix::Layout::InOut)
            gemv(a, true, gemv_ws_.as<float>(), gemv_ws_.bytes(), stream_);
        else
            matmul(a);
    }

    // ---- memory
    void copy(void* dst, const void* src, size_t bytes) override {
        if (bytes && dst != src) RWKV_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
    }
    void copy_rows(const float* src, int64_t row0, int64_t stride, float* dst, int n, int C) override {
        cuda::copy_rows(src, row0, stride, dst, n, C, stream_);
    }
    void upload(void* dst, const void* host_src, size_t bytes) override {
        if (bytes == 0) return;
        RWKV_CUDA_CHECK(cudaSetDevice(device_));
        if (staging_used_ + bytes <= kStagingBytes) {  // pinned: a true async copy; reused after synchronize()
            char* at = static_cast<char*>(staging_) + staging_used_;
            std::memcpy(at, host_src, bytes);
            staging_used_ += (bytes + 15) / 16 * 16;
            RWKV_CUDA_CHECK(cudaMemcpyAsync(dst, at, bytes, cudaMemcpyHostToDevice, stream_));
        } else {  // pageable: the call returns once the source has been read
            RWKV_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream_));
        }
    }
    void download(void* host_dst, const void* src, size_t bytes) override {
        if (bytes == 0) return;
        RWKV_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
        RWKV_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
    void synchronize() override {
        RWKV_CUDA_CHECK(cudaStreamSynchronize(stream_));
        staging_used_ = 0;
    }

    void run_step(uint64_t key, const std::function<void()>& step) override {
        if (!graphs_) return step();
        auto it = graphs_exec_.find(key);
        if (it == graphs_exec_.end()) {
            if (graphs_exec_.size() >= kMaxGraphs) evict_least_recent_graph();
            cudaGraphExec_t exec = capture(step);
            if (!exec) return step();  // capture failed: warned once, graphs now off for this context
            it = graphs_exec_.emplace(key, Graph{exec, 0}).first;
        }
        it->second.last_use = ++graph_clock_;
        RWKV_CUDA_CHECK(cudaGraphLaunch(it->second.exec, stream_));
    }

    // ---- sampling
    int32_t sample_token(float* logits, int V, TokenSampler& sampler) {
        RWKV_CUDA_CHECK(cudaSetDevice(device_));
        // A call that threw may have left copies from the pinned inputs in flight: let them finish before they
        // are rewritten (free when the stream is idle).
        RWKV_CUDA_CHECK(cudaStreamSynchronize(stream_));
        const SamplerParams& p = sampler.params();
        const size_t n = sampler.banned_tokens().size() + sampler.logit_bias().size() + sampler.seen_ids().size();
        reserve_edits(n);
        // The CPU sampler's apply_penalties, in its order: bans, bias, then each seen id's penalty (computed in
        // double, subtracted in float).
        size_t i = 0;
        for (int32_t id : sampler.banned_tokens()) edits_host_[i++] = {0, id, -INFINITY, 0};
        for (const auto& [id, b] : sampler.logit_bias()) edits_host_[i++] = {0, id, b, 1};
        const double presence = p.presence_penalty, frequency = p.frequency_penalty;
        for (int32_t id : sampler.seen_ids())
            edits_host_[i++] = {0, id, static_cast<float>(presence + sampler.occurrence(id) * frequency), 2};
        // Small inputs in one pinned block: [n_edits int32 | pad | u double | params | out int32].
        char* h = static_cast<char*>(small_host_);
        char* d = small_.as<char>();
        const int32_t n_edits = int32_t(n);
        const double u = sampler.draw_uniform();  // one RNG step, as select() takes
        const DeviceSamplerParams dp = {p.temperature, p.top_p, int32_t(p.top_k), p.min_p};
        std::memcpy(h + 0, &n_edits, 4);
        std::memcpy(h + 8, &u, 8);
        std::memcpy(h + 16, &dp, sizeof dp);
        static_assert(sizeof(DeviceSamplerParams) <= 32, "sampling parameter block");
        RWKV_CUDA_CHECK(cudaMemcpyAsync(d, h, 48, cudaMemcpyHostToDevice, stream_));
        if (n) {
            RWKV_CUDA_CHECK(
                cudaMemcpyAsync(edits_.data(), edits_host_, n * sizeof(LogitEdit), cudaMemcpyHostToDevice, stream_));
            apply_logit_edits(logits, V, edits_.as<LogitEdit>(), reinterpret_cast<const int32_t*>(d), int(n), stream_);
        }
        int32_t* out = reinterpret_cast<int32_t*>(d + 64);
        sample(logits, 1, V, reinterpret_cast<const DeviceSamplerParams*>(d + 16),
               reinterpret_cast<const double*>(d + 8), out, sample_ws_.data(), sample_ws_.bytes(), stream_);
        RWKV_CUDA_CHECK(cudaMemcpyAsync(h + 64, out, 4, cudaMemcpyDeviceToHost, stream_));
        synchronize();
        int32_t token;
        std::memcpy(&token, h + 64, 4);
        if (token < 0) throw_invalid("sampling: the logits hold a NaN or +inf, or every token is banned (-inf)");
        return token;
    }

    int64_t workspace_bytes() const {
        return int64_t(gemv_ws_.bytes() + cublas_ws_.bytes() + act_.bytes() + sample_ws_.bytes() + small_.bytes() +
                       edits_.bytes());
    }
    bool graphs_active() const { return graphs_; }

  private:
    // y (=|+=) x·Wᵀ with cuBLAS, column-major view: Yᵀ [n_out, T] = op(W) [n_out, n_in] · Xᵀ [n_in, T].
    // OutIn W (row-major [n_out, n_in]) is column-major [n_in, n_out]: op = T, lda = n_in. InOut W (row-major
    // [n_in, n_out]) is column-major [n_out, n_in]: op = N, lda = n_out.
    void gemm(const MatmulArgs& a) {
        const WeightMatrix& w = *a.w;
        const void* x = a.x;
        if (w.dtype != DType::F32) {  // cuBLAS wants both inputs in one type: the activations go to f16/bf16
            convert(a.x, DType::F32, act_.data(), w.dtype, int64_t(a.T) * w.n_in, stream_);
            x = act_.data();
        }
        const float alpha = 1.0f, beta = a.accumulate ? 1.0f : 0.0f;
        const bool out_in = w.layout == WeightMatrix::Layout::OutIn;
        const cudaDataType t = cuda_type(w.dtype);
        RWKV_CUBLAS_CHECK(cublasGemmEx(cublas_, out_in ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, w.n_out, a.T, w.n_in,
                                       &alpha, w.data, t, out_in ? w.n_in : w.n_out, x, t, w.n_in, &beta, a.y,
                                       CUDA_R_32F, w.n_out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }

    cudaGraphExec_t capture(const std::function<void()>& step) {
        cudaGraph_t graph = nullptr;
        cudaGraphExec_t exec = nullptr;
        std::string why;
        cudaError_t err = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal);
        if (err == cudaSuccess) {
            try {
                step();
            } catch (const std::exception& e) {
                why = e.what();
            } catch (...) {
                why = "an unknown exception";
            }
            err = cudaStreamEndCapture(stream_, &graph);
            if (err == cudaSuccess && why.empty()) err = cudaGraphInstantiate(&exec, graph, 0);
        }
        if (graph) cudaGraphDestroy(graph);
        if (err != cudaSuccess || !why.empty()) {
            if (why.empty()) why = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
            cudaGetLastError();
            if (exec) cudaGraphExecDestroy(exec);
            graphs_ = false;
            log_warn("CUDA graph capture of the decode step failed (" + why +
                     "); this context runs decode steps as plain launches from now on");
            return nullptr;
        }
        return exec;
    }

    // A server decoding batches of many sizes would otherwise keep one graph per size for ever.
    void evict_least_recent_graph() {
        auto oldest = std::min_element(graphs_exec_.begin(), graphs_exec_.end(), [](const auto& x, const auto& y) {
            return x.second.last_use < y.second.last_use;
        });
        RWKV_CUDA_CHECK(cudaStreamSynchronize(stream_));  // it may still be running
        RWKV_CUDA_CHECK(cudaGraphExecDestroy(oldest->second.exec));
        graphs_exec_.erase(oldest);
    }

    void reserve_edits(size_t n) {
        if (n <= edits_capacity_ && edits_host_) return;
        const size_t cap = std::max(n, edits_capacity_ * 2);
        edits_ = Buffer(MemoryKind::Cuda, device_, cap * sizeof(LogitEdit), "the sampler's logit edits");
        if (edits_host_) cudaFreeHost(edits_host_);
        edits_host_ = nullptr;
        RWKV_CUDA_CHECK(
            cudaHostAlloc(reinterpret_cast<void**>(&edits_host_), cap * sizeof(LogitEdit), cudaHostAllocDefault));
        edits_capacity_ = cap;
    }

    int device_;
    bool graphs_;
    cudaStream_t stream_ = nullptr;
    cublasHandle_t cublas_ = nullptr;
    Buffer gemv_ws_, cublas_ws_, act_, sample_ws_, small_, edits_;
    void* staging_ = nullptr;
    size_t staging_used_ = 0;
    void* small_host_ = nullptr;
    LogitEdit* edits_host_ = nullptr;
    size_t edits_capacity_ = 0;
    struct Graph {
        cudaGraphExec_t exec;
        uint64_t last_use;  // graph_clock_ at the last replay
    };
    std::map<uint64_t, Graph> graphs_exec_;  // by run_step key (batch size, logit rows)
    uint64_t graph_clock_ = 0;
};

CudaBackend& as_cuda(Backend& be) {
    auto* c = dynamic_cast<CudaBackend*>(&be);
    if (!c) throw Error(RWKV_STATUS_INTERNAL, "internal error: a CUDA call on a non-CUDA backend");
    return *c;
}

}  // namespace

std::unique_ptr<Backend> make_backend(int device, const ModelConfig& c, const ModelTensors& t, int max_T, bool graphs) {
    return std::make_unique<CudaBackend>(device, c, t, max_T, graphs);
}

int64_t backend_workspace_bytes(const Backend& be) {
    auto* c = dynamic_cast<const CudaBackend*>(&be);
    return c ? c->workspace_bytes() : 0;
}

bool backend_graphs_active(const Backend& be) {
    auto* c = dynamic_cast<const CudaBackend*>(&be);
    return c && c->graphs_active();
}

int32_t sample(Backend& be, float* logits, int V, TokenSampler& sampler) {
    return as_cuda(be).sample_token(logits, V, sampler);
}

}  // namespace rwkv::cuda
