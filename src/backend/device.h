// What accelerators this build and this machine have.
#pragma once

#include <string>

namespace rwkv {

// True when the CUDA sources were compiled in.
bool cuda_compiled();
// Number of CUDA devices visible at run time (0 without a driver or GPU, or when CUDA is not compiled in).
int cuda_device_count();
// "NVIDIA H100 80GB HBM3, driver 13.0, runtime 13.0" for device 0, or "" when there is none.
std::string cuda_device_description();

}  // namespace rwkv
