// The CUDA backend as the rest of the library sees it: plain C++ (no CUDA headers), so api.cpp compiles the same
// with and without CUDA. Implemented in src/backend/cuda/*.cu; without CUDA compiled in, src/backend/cuda_stub.cpp
// provides versions that throw Error(UNSUPPORTED). Design: docs/cuda.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "model/rwkv7.h"

namespace rwkv {

class TokenSampler;

namespace cuda {

// ---- device memory (synchronous; each call selects `device` for the calling thread first)

// cudaMalloc + zero fill. On failure: Error(OUT_OF_MEMORY) "CUDA device 0 (NAME): out of memory allocating
// 1536.0 MiB for <what> (812.3 MiB free of 81559.2 MiB)", never a crash.
void* device_alloc(int device, size_t bytes, const char* what);
void device_free(int device, void* p) noexcept;
// cudaMemcpy with the direction inferred from the pointers (host <-> device or device <-> device).
void device_copy(int device, void* dst, const void* src, size_t bytes);
void device_zero(int device, void* p, size_t bytes);

struct DeviceInfo {
    std::string name;        // "NVIDIA H100 80GB HBM3"
    int64_t free_bytes = 0;  // cudaMemGetInfo at the call
    int64_t total_bytes = 0;
};
DeviceInfo device_info(int device);

// ---- weights: one upload at model load

struct DeviceWeights {
    Buffer vectors;        // fp32: the embedding [V, C] (ln0 folded in), the LN/GN affines, mixes, biases
    Buffer matrices;       // every matrix in `dtype`, layout as loaded
    ModelTensors tensors;  // pointers into the two buffers: what the forward reads
    DType dtype = DType::F16;
    int64_t bytes() const { return int64_t(vectors.bytes() + matrices.bytes()); }
};

// Copies the model's weights to `device`, converting the matrices to `dtype` on the device
// (rwkv::cuda::convert); `progress` gets the fraction of matrix elements done.
std::unique_ptr<DeviceWeights> upload_weights(const LoadedModel& m, DType dtype, int device,
                                              const std::function<void(float)>& progress);

// ---- a context's backend: one stream, one cuBLAS handle, every workspace allocated here (the ops never
// allocate); decode steps replayed from CUDA graphs when `graphs` is set.

// Rows up to which the FFN value projection uses the sparse GEMV (reads only the rows of non-zero ReLU²
// activations). Above it (and above kMaxGemvT) the dense path: the union of needed rows grows like 1 - s^rows
// (57% of the rows at 8 rows for 90% sparsity). To be measured on a GPU (docs/cuda.md §Thresholds).
constexpr int kSparseFfnMaxRows = 4;

std::unique_ptr<Backend> make_backend(int device, const ModelConfig& c, const ModelTensors& t, int max_T, bool graphs);
// Device bytes the backend holds besides the scratch (cuBLAS and GEMV workspaces, activation conversion buffer,
// sampling buffers).
int64_t backend_workspace_bytes(const Backend& be);
// Whether decode steps still run as graphs (false after a capture failure or with graphs off).
bool backend_graphs_active(const Backend& be);

// Samples one token from `logits` ([V] fp32 in the backend's device memory, modified in place) on the device,
// with the sampler's bans, bias, penalties and parameters and one step of its RNG: the choice `sampler.sample`
// would make on the same logits, up to rounding at a cut (kernels/cuda/launch.h, sample). Copies one int back.
// Throws Error(INVALID_ARGUMENT) like the CPU sampler for a NaN or +inf logit or an all -inf row.
int32_t sample(Backend& be, float* logits, int V, TokenSampler& sampler);

}  // namespace cuda
}  // namespace rwkv
