// Buffer and the synchronous transfers: host memory here, CUDA memory through backend/cuda/cuda.h.
#include <cstdlib>
#include <new>
#include <string>

#include "backend/backend.h"
#include "backend/cuda/cuda.h"
#include "common/error.h"

namespace rwkv {

namespace {

std::string mib(size_t bytes) {
    char s[32];
    std::snprintf(s, sizeof s, "%.1f MiB", double(bytes) / (1024.0 * 1024.0));
    return s;
}

}  // namespace

Buffer::Buffer(MemoryKind kind, int device, size_t bytes, const char* what) : kind_(kind) {
    if (bytes == 0) return;
    if (kind == MemoryKind::Cuda) {
        ptr_ = cuda::device_alloc(device, bytes, what);  // zero-filled; throws with the device's numbers
        device_ = device;
    } else {
        const size_t rounded = (bytes + 63) / 64 * 64;
        ptr_ = std::aligned_alloc(64, rounded);
        if (!ptr_)
            throw Error(RWKV_STATUS_OUT_OF_MEMORY,
                        std::string("out of host memory allocating ") + mib(bytes) + " for " + what);
        std::memset(ptr_, 0, rounded);
    }
    bytes_ = bytes;
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
    if (this != &o) {
        release();
        ptr_ = o.ptr_;
        bytes_ = o.bytes_;
        kind_ = o.kind_;
        device_ = o.device_;
        o.ptr_ = nullptr;
        o.bytes_ = 0;
    }
    return *this;
}

void Buffer::release() noexcept {
    if (!ptr_) return;
    if (kind_ == MemoryKind::Cuda)
        cuda::device_free(device_, ptr_);
    else
        std::free(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
}

void memory_to_host(void* host_dst, const void* src, size_t bytes, MemoryKind kind, int device) {
    if (kind == MemoryKind::Cuda)
        cuda::device_copy(device, host_dst, src, bytes);
    else if (bytes)
        std::memcpy(host_dst, src, bytes);
}

void memory_from_host(void* dst, const void* host_src, size_t bytes, MemoryKind kind, int device) {
    if (kind == MemoryKind::Cuda)
        cuda::device_copy(device, dst, host_src, bytes);
    else if (bytes)
        std::memcpy(dst, host_src, bytes);
}

void memory_copy(void* dst, const void* src, size_t bytes, MemoryKind kind, int device) {
    if (kind == MemoryKind::Cuda)
        cuda::device_copy(device, dst, src, bytes);
    else if (bytes && dst != src)
        std::memmove(dst, src, bytes);
}

void memory_fill_zero(void* dst, size_t bytes, MemoryKind kind, int device) {
    if (kind == MemoryKind::Cuda)
        cuda::device_zero(device, dst, bytes);
    else if (bytes)
        std::memset(dst, 0, bytes);
}

}  // namespace rwkv
