// Whole-file helpers: atomic replacement and CRC-32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rwkv {

// Writes `bytes` to a temporary file in the same directory, flushes it to disk, then renames it over `path`.
// An interrupted write leaves any previous file at `path` intact. Throws rwkv::Error(IO_ERROR).
void write_file_atomically(const std::string& path, const void* bytes, size_t size);

// Reads a whole file. Throws rwkv::Error(IO_ERROR) naming the path.
std::vector<uint8_t> read_whole_file(const std::string& path);

// CRC-32 (IEEE 802.3, as zlib), continuing from `crc` (0 to start).
uint32_t crc32(const void* data, size_t size, uint32_t crc = 0);

}  // namespace rwkv
