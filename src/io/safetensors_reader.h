// .safetensors checkpoints: an 8-byte little-endian header length N, N bytes of JSON, then the tensor bytes.
#pragma once

#include "io/checkpoint.h"

namespace rwkv {

// Limits on the JSON header. The JSON is first scanned (SAX, no allocation per value) against the last three, so
// that a hostile header is refused before it is built into a DOM; the DOM then costs at most ~100 bytes per value.
constexpr uint64_t kSafetensorsMaxHeader = 100ull << 20;  // 100 MiB, as the reference implementation
constexpr size_t kSafetensorsMaxTensors = 65536;          // a released RWKV-7 has at most a few thousand
constexpr size_t kSafetensorsMaxValues = 1u << 20;        // JSON values of all kinds (~10 per tensor entry)
constexpr int kSafetensorsMaxDepth = 3;                   // top object > tensor entry > shape / data_offsets

// Fills `ckpt` (opened on a .safetensors) with its tensors, in file order. Throws rwkv::Error(FORMAT_ERROR)
// with "<path>: ..." when the header or a tensor's range is malformed. Tensors are views into the mapped file
// (copied only when their data is not aligned to the element size).
void read_safetensors(Checkpoint& ckpt);

}  // namespace rwkv
