// Writing torch.save-compatible .pth files (the zip container of rwkv7.md §1.5), loadable by torch.load and by
// Checkpoint::open. Atomic and streamed, as the safetensors writer (io/safetensors_writer.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "io/tensor.h"

namespace rwkv {

struct PthWriteOptions {
    // Sizes and offsets at or above this value are written as ZIP64 fields (the 32-bit field saturated to
    // 0xFFFFFFFF, the value in a ZIP64 extra field or end record). 0xFFFFFFFF is what the zip format needs; tests
    // lower it to exercise the ZIP64 paths with small files.
    uint64_t zip64_threshold = 0xFFFFFFFF;
};

// Writes the tensors as torch.save writes an OrderedDict state dict (torch 1.13 layout, plus torch 2.x's
// byteorder record):
//   zip:    STORED entries, general-purpose flags 0x0808, zero CRC and sizes in the local headers followed by a data
//           descriptor, an "FB" extra field padding every entry's data to a 64-byte aligned offset, a central
//           directory, and (as torch's miniz always writes) a ZIP64 end record and locator before the end record;
//           ZIP64 extra fields where sizes or offsets need them (files over 4 GiB).
//   names:  <prefix>/data.pkl, <prefix>/byteorder ("little"), <prefix>/data/<i> (one storage per tensor, i = its
//           position), <prefix>/version ("3\n"); <prefix> is the file name without directory and extension.
//   pickle: protocol 2, OrderedDict of torch._utils._rebuild_tensor_v2(storage, 0, shape, contiguous strides,
//           False, OrderedDict()) with storages as BINPERSID ('storage', torch.<Float|Half|BFloat16>Storage, key,
//           'cpu', numel), memoised as Python's pickler does, SETITEMS in batches of at most 1000.
// Throws rwkv::Error: INVALID_ARGUMENT for an empty or repeated name or a tensor without data, IO_ERROR when the
// file cannot be written (any previous file at `path` is then left as it was).
void write_pth(const std::string& path, const std::vector<const TensorView*>& tensors);
void write_pth(const std::string& path, const std::vector<const TensorView*>& tensors, const PthWriteOptions& options);

// CRC-32 (zlib's), continuing from `crc` (0 to start); slicing-by-8, several GB/s.
uint32_t crc32_fast(const void* data, size_t size, uint32_t crc = 0);

}  // namespace rwkv
