// Error checking for CUDA runtime calls and kernel launches: a failure becomes rwkv::Error
// (RWKV_STATUS_BACKEND_ERROR, or RWKV_STATUS_OUT_OF_MEMORY for cudaErrorMemoryAllocation) naming the call, the
// file and line, and CUDA's own message.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "rwkv/error.hpp"

namespace rwkv::cuda {

[[noreturn]] inline void throw_cuda(cudaError_t err, const char* what, const char* file, int line) {
    cudaGetLastError();  // clear a non-sticky error so the next call starts clean
    rwkv_status st = err == cudaErrorMemoryAllocation ? RWKV_STATUS_OUT_OF_MEMORY : RWKV_STATUS_BACKEND_ERROR;
    throw Error(st, std::string("CUDA error in ") + what + " (" + file + ":" + std::to_string(line) +
                        "): " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

}  // namespace rwkv::cuda

// Checks a runtime call's result.
#define RWKV_CUDA_CHECK(call)                                                                                   \
    do {                                                                                                        \
        cudaError_t rwkv_cuda_err_ = (call);                                                                    \
        if (rwkv_cuda_err_ != cudaSuccess) ::rwkv::cuda::throw_cuda(rwkv_cuda_err_, #call, __FILE__, __LINE__); \
    } while (0)

// Checks the kernel launch just made (launch configuration errors; never synchronises).
#define RWKV_CUDA_CHECK_LAUNCH(name)                                                         \
    do {                                                                                     \
        cudaError_t rwkv_cuda_err_ = cudaGetLastError();                                     \
        if (rwkv_cuda_err_ != cudaSuccess)                                                   \
            ::rwkv::cuda::throw_cuda(rwkv_cuda_err_, "launch of " name, __FILE__, __LINE__); \
    } while (0)
