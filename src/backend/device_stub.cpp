// Device discovery when the CUDA sources are not compiled in.
#ifndef RWKV_WITH_CUDA
#include "backend/device.h"

namespace rwkv {

bool cuda_compiled() {
    return false;
}
int cuda_device_count() {
    return 0;
}
std::string cuda_device_description() {
    return "";
}

}  // namespace rwkv
#endif
