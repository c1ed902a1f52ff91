// The seam between the forward pass and the hardware: the RWKV-shaped ops the forward calls, plus the memory they
// run on. Each op has a CPU twin in kernels/ (the reference). Pointers are in the backend's memory (host memory for
// the CPU backend, device memory for CUDA); ops never allocate or synchronise, so a CUDA backend can capture a
// whole step in a graph.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "kernels/norm.h"
#include "kernels/time_mix.h"

namespace rwkv {

struct EmbedArgs {
    const int32_t* tokens;  // [T], each < V (checked by the caller)
    const float* emb;       // [V, C] with ln0 folded in
    float* x;               // [T, C]
    int T, C;
};

// Where a buffer lives.
enum class MemoryKind { Host, Cuda };

// An owned, zero-filled block of host memory (64-byte aligned) or CUDA device memory. Move-only.
class Buffer {
  public:
    Buffer() = default;
    // Throws Error(OUT_OF_MEMORY) naming `what`, the size asked for and (CUDA) the device's free memory, or
    // Error(UNSUPPORTED) for CUDA memory in a build without CUDA. `device` is ignored for host memory.
    Buffer(MemoryKind kind, int device, size_t bytes, const char* what);
    Buffer(Buffer&& o) noexcept { *this = static_cast<Buffer&&>(o); }
    Buffer& operator=(Buffer&& o) noexcept;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    ~Buffer() { release(); }

    void* data() const { return ptr_; }
    template <typename T>
    T* as() const {
        return static_cast<T*>(ptr_);
    }
    size_t bytes() const { return bytes_; }
    MemoryKind kind() const { return kind_; }
    int device() const { return device_; }

  private:
    void release() noexcept;
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
    MemoryKind kind_ = MemoryKind::Host;
    int device_ = -1;
};

// Synchronous copies for state and weight transfers outside a step (host <-> `kind` memory on `device`, or within
// it). They wait for the device to finish the copy; no context's stream is involved.
void memory_to_host(void* host_dst, const void* src, size_t bytes, MemoryKind kind, int device);
void memory_from_host(void* dst, const void* host_src, size_t bytes, MemoryKind kind, int device);
void memory_copy(void* dst, const void* src, size_t bytes, MemoryKind kind, int device);
void memory_fill_zero(void* dst, size_t bytes, MemoryKind kind, int device);

class Backend {
  public:
    virtual ~Backend() = default;
    virtual const char* name() const = 0;

    virtual void embed(const EmbedArgs& a) = 0;
    virtual void layer_norm(const LayerNormArgs& a) = 0;
    virtual void token_shift(const TokenShiftArgs& a) = 0;
    virtual void matmul(const MatmulArgs& a) = 0;
    virtual void bias_act(const BiasActArgs& a) = 0;
    virtual void key_prep(const KeyPrepArgs& a) = 0;
    virtual void wkv7(const Wkv7Args& a) = 0;
    virtual void time_mix_output(const TimeMixOutputArgs& a) = 0;

    // A matmul whose input is mostly exact zeros (the ReLU² hidden of the FFN): a backend may read only the weight
    // rows of the non-zero inputs (w is InOut then). Same result as matmul.
    virtual void matmul_sparse_input(const MatmulArgs& a) { matmul(a); }

    // ---- memory. The defaults are those of a host-memory backend (the CPU).
    virtual MemoryKind memory() const { return MemoryKind::Host; }
    virtual int device() const { return -1; }
    // dst <- src, `bytes` bytes, both in the backend's memory, ordered with the ops (a step op, graph-safe).
    virtual void copy(void* dst, const void* src, size_t bytes) { std::memmove(dst, src, bytes); }
    // dst[r] = src[row0 + r * stride] for r < n rows of C floats; src and dst do not overlap. A step op.
    virtual void copy_rows(const float* src, int64_t row0, int64_t stride, float* dst, int n, int C) {
        for (int r = 0; r < n; r++) std::memcpy(dst + int64_t(r) * C, src + (row0 + r * stride) * C, sizeof(float) * C);
    }
    // Host -> backend memory, ordered with the ops; `host_src` may be reused as soon as this returns. Not a step op:
    // call it before a step, never inside run_step.
    virtual void upload(void* dst, const void* host_src, size_t bytes) { std::memcpy(dst, host_src, bytes); }
    // Backend memory -> host, after every op issued before it; complete when it returns. Not a step op.
    virtual void download(void* host_dst, const void* src, size_t bytes) { std::memcpy(host_dst, src, bytes); }
    // Waits for every op issued so far; reports a device failure as Error(BACKEND_ERROR).
    virtual void synchronize() {}
    // Runs `step`, a sequence of ops of fixed shape that reads its inputs from fixed addresses. A CUDA backend
    // captures it as a graph the first time it sees `key` and replays the graph afterwards (so `step` must do
    // the same thing every time for one key); other backends simply call it.
    virtual void run_step(uint64_t key, const std::function<void()>& step) { step(); }
};

}  // namespace rwkv
