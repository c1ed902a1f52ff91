// A named tensor as found in a checkpoint: dtype, shape and a pointer into the mapped file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rwkv {

enum class DType { F32, F16, BF16 };

inline size_t dtype_size(DType t) {
    return t == DType::F32 ? 4 : 2;
}
const char* dtype_name(DType t);  // "f32", "f16", "bf16"

// Row-major, contiguous view of checkpoint data. `data` points into a MappedFile (zero copy) or, for
// a non-contiguous .pth tensor, into a buffer owned by the Checkpoint that produced it.
struct TensorView {
    std::string name;  // checkpoint key, e.g. "blocks.0.att.key.weight"
    DType dtype = DType::F32;
    std::vector<int64_t> shape;  // as stored, e.g. [C, C]
    const void* data = nullptr;  // numel() * dtype_size(dtype) bytes
    int64_t numel() const;
    size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
    std::string shape_string() const;  // "[768, 768]"
};

}  // namespace rwkv
