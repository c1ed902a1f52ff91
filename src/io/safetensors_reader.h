// .safetensors checkpoints: an 8-byte little-endian header length N, N bytes of JSON, then the tensor bytes.
#pragma once

#include "io/checkpoint.h"

namespace rwkv {

// Limits on the JSON header.
constexpr uint64_t kSafetensorsMaxHeader = 100ull << 20;  // 100 MiB, as the reference implementation

// Fills `ckpt` (opened on a .safetensors) with its tensors, in file order. Throws rwkv::Error(FORMAT_ERROR)
// with "<path>: ..." when the header or a tensor's range is malformed. Tensors are views into the mapped file
// (copied only when their data is not aligned to the element size).
void read_safetensors(Checkpoint& ckpt);

}  // namespace rwkv
