// A restricted interpreter for the pickle that torch.save writes as data.pkl: it rebuilds the state dict
// (key -> tensor record) and never executes anything. Only the globals torch uses for a state dict of
// f32/f16/bf16 tensors are known (collections.OrderedDict, torch._utils._rebuild_tensor_v2 and
// _rebuild_parameter, and the Float, Half and BFloat16 storage types); any other global is a format error.
// See docs/formats.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "io/tensor.h"

namespace rwkv {

// One entry of the pickled state dict, as torch describes it: a strided view into a storage.
struct PickleTensor {
    std::string key;              // state-dict key
    DType dtype = DType::F32;     // from the storage type (FloatStorage, HalfStorage, BFloat16Storage)
    std::string storage_key;      // the zip entry is "<prefix>/data/<storage_key>"
    int64_t storage_numel = 0;    // elements in the storage
    int64_t offset = 0;           // storage offset of element [0, 0, ...], in elements
    std::vector<int64_t> shape;   // sizes, may be empty (0-dim tensor)
    std::vector<int64_t> stride;  // in elements, same length as shape
};

// Bounds on what a pickle may ask for; beyond them it is a format error, never a large allocation.
struct PickleLimits {
    static constexpr size_t kMaxDepth = 1000;       // nesting of containers and of MARKs
    static constexpr size_t kMaxString = 1 << 20;   // bytes in one string or bytes object
    static constexpr size_t kMaxStack = 1000000;    // values on the stack
    static constexpr size_t kMaxMemo = 1000000;     // memo entries
    static constexpr size_t kMaxItems = 1000000;    // elements in one tuple or list, pairs in one dict
    static constexpr size_t kMaxObjects = 2000000;  // objects created over the whole run (~100 bytes each)
    static constexpr size_t kMaxDims = 64;          // tensor dimensions
    static constexpr size_t kMaxTensors = 65536;    // tensors rebuilt (a released RWKV-7 has a few thousand)
};

// Interprets a data.pkl and returns the state dict's tensors in insertion order. `where` starts every error
// message (e.g. "model.pth: archive/data.pkl"); errors are rwkv::Error(FORMAT_ERROR) and say at which byte.
// Checks the pickle only: storage sizes and extents are checked by the caller against the archive.
std::vector<PickleTensor> parse_torch_pickle(const uint8_t* data, size_t size, const std::string& where);

}  // namespace rwkv
