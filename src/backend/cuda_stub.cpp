// The CUDA backend's entry points when CUDA is not compiled in: every one refuses with Error(UNSUPPORTED)
// (api.cpp never gets here: it checks cuda_compiled() first).
#ifndef RWKV_WITH_CUDA
#include "backend/cuda/cuda.h"
#include "common/error.h"

namespace rwkv::cuda {

namespace {
[[noreturn]] void not_compiled() {
    throw_unsupported("the CUDA backend is not compiled into this build of librwkv");
}
}  // namespace

void* device_alloc(int, size_t, const char*) {
    not_compiled();
}
void device_free(int, void*) noexcept {}
void device_copy(int, void*, const void*, size_t) {
    not_compiled();
}
void device_zero(int, void*, size_t) {
    not_compiled();
}
DeviceInfo device_info(int) {
    return {};
}
std::unique_ptr<DeviceWeights> upload_weights(const LoadedModel&, DType, int, const std::function<void(float)>&) {
    not_compiled();
}
std::unique_ptr<Backend> make_backend(int, const ModelConfig&, const ModelTensors&, int, bool) {
    not_compiled();
}
int64_t backend_workspace_bytes(const Backend&) {
    return 0;
}
bool backend_graphs_active(const Backend&) {
    return false;
}
int32_t sample(Backend&, float*, int, TokenSampler&) {
    not_compiled();
}

}  // namespace rwkv::cuda
#endif
