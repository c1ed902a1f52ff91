// CUDA device discovery. Compiled whenever nvcc is present; every call tolerates a machine without a driver
// or GPU (the library then runs on the CPU).
#include <cuda_runtime.h>

#include <string>

#include "backend/device.h"

namespace rwkv {

bool cuda_compiled() {
    return true;
}

int cuda_device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no driver" / "no device" error
        return 0;
    }
    return n;
}

std::string cuda_device_description() {
    if (cuda_device_count() == 0) return "";
    cudaDeviceProp prop{};
    int driver = 0, runtime = 0;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess || cudaDriverGetVersion(&driver) != cudaSuccess ||
        cudaRuntimeGetVersion(&runtime) != cudaSuccess) {
        cudaGetLastError();
        return "";
    }
    auto version = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
    return std::string(prop.name) + ", driver " + version(driver) + ", runtime " + version(runtime);
}

}  // namespace rwkv
