// Reading the central directory of a zip archive as torch.save writes it (STORED entries, optional ZIP64).
//
// Only what a .pth needs: entry names and the file range of each entry's bytes. Compressed or encrypted
// entries are rejected. Bytes before the archive (a "prefix", as with self-extracting zips) are allowed:
// offsets in the central directory are relative to the start of the zip, and the shift is found the way
// unzip does it, from where the end record says the central directory starts vs where it actually starts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace rwkv {

struct ZipEntry {
    std::string name;          // as stored, e.g. "archive/data/0"
    uint64_t data_offset = 0;  // absolute file offset of the first data byte
    uint64_t size = 0;         // bytes (STORED, so compressed size == uncompressed size)
};

class ZipReader {
  public:
    // Parses the end records, the central directory and every local header. Throws rwkv::Error(FORMAT_ERROR)
    // with a message "<path>: ..." for anything malformed. `data` must stay valid while the reader is used.
    ZipReader(const std::string& path, const uint8_t* data, size_t size);

    const std::vector<ZipEntry>& entries() const { return entries_; }
    const ZipEntry* find(const std::string& name) const;  // nullptr when absent
    const uint8_t* entry_data(const ZipEntry& e) const { return data_ + e.data_offset; }

    // True when an end-of-central-directory signature appears in the last 64 KiB + 22 bytes, i.e. the file
    // claims to be a zip. Used for format detection; says nothing about validity.
    static bool looks_like_zip(const uint8_t* data, size_t size);

  private:
    std::string path_;
    const uint8_t* data_;
    size_t size_;
    std::vector<ZipEntry> entries_;
    std::unordered_map<std::string, size_t> index_;  // name -> position in entries_
};

}  // namespace rwkv
