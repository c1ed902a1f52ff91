// Model weights on the device, uploaded once at load: every fp32 vector (the embedding with ln0 folded in, the
// LN/GN affines, mixes and LoRA biases) packed into one buffer, every matrix converted to the chosen dtype (f16
// by default) into a second one. Conversion runs on the device (rwkv::cuda::convert) from the file's dtype,
// in chunks through a staging buffer, so the host never holds a converted copy. Layouts are kept as loaded
// (OutIn or InOut; the loader stores ffn.value InOut for the sparse FFN).
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "backend/cuda/cuda.h"
#include "common/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"

namespace rwkv::cuda {

namespace {

constexpr size_t kAlign = 256;
constexpr int64_t kStagingElements = int64_t(16) << 20;  // 16 Mi elements per conversion chunk (64 MiB of f32)

size_t align(size_t n) {
    return (n + kAlign - 1) / kAlign * kAlign;
}

}  // namespace

std::unique_ptr<DeviceWeights> upload_weights(const LoadedModel& m, DType dtype, int device,
                                              const std::function<void(float)>& progress) {
    RWKV_CUDA_CHECK(cudaSetDevice(device));
    auto dw = std::make_unique<DeviceWeights>();
    dw->dtype = dtype;
    const Weights& w = m.weights;
    ModelTensors& t = dw->tensors;
    t.layers.resize(w.layers.size());

    // Every vector and matrix with the field of `t` that will point to its device copy.
    struct Vec {
        const std::vector<float>* src;
        const float** dst;
    };
    struct Mat {
        const WeightMatrix* src;
        WeightMatrix* dst;
    };
    std::vector<Vec> vecs = {{&w.emb, &t.emb}, {&w.ln_out_w, &t.ln_out_w}, {&w.ln_out_b, &t.ln_out_b}};
    std::vector<Mat> mats = {{&w.head, &t.head}};
    for (size_t l = 0; l < w.layers.size(); l++) {
        const LayerWeights& src = w.layers[l];
        LayerTensors& dst = t.layers[l];
#define RWKV_LIST_VECTOR(name) vecs.push_back({&src.name, &dst.name});
#define RWKV_LIST_MATRIX(name) mats.push_back({&src.name, &dst.name});
        RWKV_LAYER_VECTORS(RWKV_LIST_VECTOR)
        RWKV_LAYER_MATRICES(RWKV_LIST_MATRIX)
#undef RWKV_LIST_VECTOR
#undef RWKV_LIST_MATRIX
    }

    size_t vec_bytes = 0, mat_bytes = 0;
    int64_t total_elements = 0;
    for (const Vec& v : vecs) vec_bytes += align(v.src->size() * sizeof(float));
    for (const Mat& x : mats) {
        const int64_t n = int64_t(x.src->n_out) * x.src->n_in;
        if (x.src->data) mat_bytes += align(size_t(n) * dtype_size(dtype));
        total_elements += n;
    }
    dw->vectors = Buffer(MemoryKind::Cuda, device, vec_bytes, "the model's vectors and embedding (fp32)");
    const std::string mat_what = std::string("the model's weight matrices (") + dtype_name(dtype) + ")";
    dw->matrices = Buffer(MemoryKind::Cuda, device, mat_bytes, mat_what.c_str());

    char* at = dw->vectors.as<char>();
    for (const Vec& v : vecs) {
        if (v.src->empty()) {
            *v.dst = nullptr;  // v0 of layer 0
            continue;
        }
        RWKV_CUDA_CHECK(cudaMemcpy(at, v.src->data(), v.src->size() * sizeof(float), cudaMemcpyHostToDevice));
        *v.dst = reinterpret_cast<const float*>(at);
        at += align(v.src->size() * sizeof(float));
    }

    // Matrices: same dtype -> straight copy; else host -> staging (file dtype) -> convert on the device.
    bool need_staging = false;
    for (const Mat& x : mats) need_staging |= x.src->data && x.src->dtype != dtype;
    Buffer staging;
    if (need_staging)
        staging = Buffer(MemoryKind::Cuda, device, size_t(kStagingElements) * sizeof(float),
                         "the staging buffer of the weight conversion");
    at = dw->matrices.as<char>();
    int64_t done = 0;
    for (const Mat& x : mats) {
        const WeightMatrix& src = *x.src;
        WeightMatrix& dst = *x.dst;
        dst = src;
        const int64_t n = int64_t(src.n_out) * src.n_in;
        if (!src.data) continue;  // v1, v2 of layer 0
        dst.data = at;
        dst.dtype = dtype;
        if (src.dtype == dtype) {
            RWKV_CUDA_CHECK(cudaMemcpy(at, src.data, size_t(n) * dtype_size(dtype), cudaMemcpyHostToDevice));
        } else {
            for (int64_t begin = 0; begin < n; begin += kStagingElements) {
                const int64_t count = std::min(kStagingElements, n - begin);
                const char* from = static_cast<const char*>(src.data) + begin * int64_t(dtype_size(src.dtype));
                RWKV_CUDA_CHECK(
                    cudaMemcpy(staging.data(), from, size_t(count) * dtype_size(src.dtype), cudaMemcpyHostToDevice));
                convert(staging.data(), src.dtype, at + begin * int64_t(dtype_size(dtype)), dtype, count, 0);
                RWKV_CUDA_CHECK(cudaStreamSynchronize(0));  // the staging buffer is reused by the next chunk
            }
        }
        at += align(size_t(n) * dtype_size(dtype));
        done += n;
        if (progress) progress(float(double(done) / double(std::max<int64_t>(total_elements, 1))));
    }
    RWKV_CUDA_CHECK(cudaDeviceSynchronize());
    return dw;
}

}  // namespace rwkv::cuda
