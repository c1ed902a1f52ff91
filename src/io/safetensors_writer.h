// Writing checkpoints: safetensors files (here) and torch.save .pth files (pth_writer.h). Both are written
// atomically (a temporary file in the target's directory, fsync, rename) and streamed: tensor bytes go from their
// TensorView straight to the file, so writing never holds a second copy of the model in memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "io/tensor.h"

namespace rwkv {

// A safetensors file: u64 little-endian header length, a JSON header ("__metadata__": {"format": "pt"} first, then
// one {"dtype", "shape", "data_offsets"} per tensor, padded with spaces so the data starts 8-byte aligned), then the
// tensor bytes back to back with no gaps (as the format requires). Data follow the given order, except that
// tensors whose size is not a multiple of 8 bytes are moved to the end so every other tensor stays 8-byte aligned.
// Throws rwkv::Error: INVALID_ARGUMENT for an empty or repeated name or a tensor without data, IO_ERROR when the
// file cannot be written (any previous file at `path` is then left as it was).
void write_safetensors(const std::string& path, const std::vector<const TensorView*>& tensors);

// A file written through a temporary sibling and renamed over `path` by commit(); destroyed without commit() it
// removes the temporary file. Writes are buffered; large ones go straight to the file. Used by both writers.
class AtomicFileWriter {
  public:
    explicit AtomicFileWriter(const std::string& path);  // throws IO_ERROR when the temporary cannot be created
    ~AtomicFileWriter();
    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

    void write(const void* data, size_t n);
    void write_zeros(size_t n);
    uint64_t offset() const { return offset_; }  // bytes written so far
    // Flushes, fsyncs, closes and renames the temporary over the target, then fsyncs the directory.
    void commit();

  private:
    void flush();
    void write_fd(const void* data, size_t n);
    [[noreturn]] void fail(const std::string& what);

    std::string path_, tmp_;
    int fd_ = -1;
    uint64_t offset_ = 0;
    std::vector<uint8_t> buf_;
};

}  // namespace rwkv
