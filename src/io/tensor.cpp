#include "io/tensor.h"

#include "common/error.h"
#include "io/checked.h"

namespace rwkv {

const char* dtype_name(DType t) {
    switch (t) {
        case DType::F32:
            return "f32";
        case DType::F16:
            return "f16";
        case DType::BF16:
            return "bf16";
    }
    return "?";
}

int64_t TensorView::numel() const {
    // The readers have already validated the shape; this guards views built elsewhere. The bound keeps
    // nbytes() (numel * up to 4 bytes) representable too.
    constexpr int64_t kMaxNumel = INT64_MAX / 8;
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0) throw_format("tensor '" + name + "': negative dimension in shape " + shape_string());
        if (!checked_mul(n, d, &n) || n > kMaxNumel)
            throw_format("tensor '" + name + "': shape " + shape_string() + " has too many elements");
    }
    return n;
}

std::string TensorView::shape_string() const {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); i++) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

}  // namespace rwkv
