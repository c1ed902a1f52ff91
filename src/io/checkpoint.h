// Opening a checkpoint file (.pth or .safetensors) as a list of named, memory-mapped tensors.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "io/tensor.h"

namespace rwkv {

enum class CheckpointFormat { Pth, Safetensors };
const char* checkpoint_format_name(CheckpointFormat f);  // "pth", "safetensors"

class Checkpoint {
  public:
    // Detects the format from the file's first bytes ("PK\x03\x04" or a zip with a prefix => pth; an 8-byte
    // little-endian header length followed by '{' => safetensors). Throws rwkv::Error (IO_ERROR for a file that
    // cannot be read, FORMAT_ERROR for anything malformed) with a message naming the file and the problem.
    static std::unique_ptr<Checkpoint> open(const std::string& path);

    const std::string& path() const { return path_; }
    CheckpointFormat format() const { return format_; }
    const std::vector<TensorView>& tensors() const { return tensors_; }
    const TensorView* find(const std::string& name) const;  // nullptr when absent

    // Used by the readers.
    Checkpoint(std::string path, CheckpointFormat format, std::unique_ptr<MappedFile> file);
    void add(TensorView t) { tensors_.push_back(std::move(t)); }
    // Storage for tensors that had to be copied (non-contiguous strides); the returned pointer stays valid.
    void* own(size_t nbytes);
    const MappedFile& file() const { return *file_; }

  private:
    std::string path_;
    CheckpointFormat format_;
    std::unique_ptr<MappedFile> file_;
    std::vector<TensorView> tensors_;
    std::vector<std::unique_ptr<unsigned char[]>> owned_;
};

}  // namespace rwkv
