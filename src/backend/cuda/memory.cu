// Device memory for buffers, states and weights: cudaMalloc with a zero fill, synchronous copies, and an
// out-of-memory message that names what was being allocated, how much, and what the device had free.
#include <cuda_runtime.h>

#include <cstdio>
#include <string>

#include "backend/cuda/cuda.h"
#include "common/error.h"
#include "kernels/cuda/check.h"

namespace rwkv::cuda {

namespace {

std::string mib(double bytes) {
    char s[32];
    std::snprintf(s, sizeof s, "%.1f MiB", bytes / (1024.0 * 1024.0));
    return s;
}

void select(int device) {
    RWKV_CUDA_CHECK(cudaSetDevice(device));
}

}  // namespace

DeviceInfo device_info(int device) {
    DeviceInfo d;
    cudaDeviceProp prop{};
    if (cudaSetDevice(device) != cudaSuccess || cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
        cudaGetLastError();
        return d;
    }
    d.name = prop.name;
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
        d.free_bytes = int64_t(free_b);
        d.total_bytes = int64_t(total_b);
    } else {
        cudaGetLastError();
    }
    return d;
}

void* device_alloc(int device, size_t bytes, const char* what) {
    select(device);
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err != cudaSuccess) {
        cudaGetLastError();  // not sticky: clear it
        DeviceInfo d = device_info(device);
        const std::string where = "CUDA device " + std::to_string(device) + (d.name.empty() ? "" : " (" + d.name + ")");
        if (err == cudaErrorMemoryAllocation)
            throw Error(RWKV_STATUS_OUT_OF_MEMORY, where + ": out of memory allocating " + mib(double(bytes)) +
                                                       " for " + what + " (" + mib(double(d.free_bytes)) + " free of " +
                                                       mib(double(d.total_bytes)) + ")");
        throw Error(RWKV_STATUS_BACKEND_ERROR, where + ": cudaMalloc of " + mib(double(bytes)) + " for " + what +
                                                   " failed: " + cudaGetErrorName(err) + ": " +
                                                   cudaGetErrorString(err));
    }
    // On the legacy stream, waited for: the contexts' streams are non-blocking and would not wait for it.
    err = cudaMemsetAsync(p, 0, bytes, 0);
    if (err == cudaSuccess) err = cudaStreamSynchronize(0);
    if (err != cudaSuccess) {
        cudaFree(p);
        throw_cuda(err, "cudaMemset (zero fill of a new buffer)", __FILE__, __LINE__);
    }
    return p;
}

void device_free(int device, void* p) noexcept {
    if (!p) return;
    if (cudaSetDevice(device) != cudaSuccess || cudaFree(p) != cudaSuccess) cudaGetLastError();
}

void device_copy(int device, void* dst, const void* src, size_t bytes) {
    if (bytes == 0 || dst == src) return;
    select(device);
    RWKV_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
    RWKV_CUDA_CHECK(cudaStreamSynchronize(0));  // device-to-device cudaMemcpy does not wait by itself
}

void device_zero(int device, void* p, size_t bytes) {
    if (bytes == 0) return;
    select(device);
    RWKV_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, 0));
    RWKV_CUDA_CHECK(cudaStreamSynchronize(0));
}

}  // namespace rwkv::cuda
