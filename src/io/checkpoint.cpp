#include "io/checkpoint.h"

#include "common/error.h"
#include "io/checked.h"
#include "io/pth_reader.h"
#include "io/safetensors_reader.h"
#include "io/zip_reader.h"

namespace rwkv {

const char* checkpoint_format_name(CheckpointFormat f) {
    switch (f) {
        case CheckpointFormat::Pth:
            return "pth";
        case CheckpointFormat::Safetensors:
            return "safetensors";
    }
    return "?";
}

Checkpoint::Checkpoint(std::string path, CheckpointFormat format, std::unique_ptr<MappedFile> file)
    : path_(std::move(path)), format_(format), file_(std::move(file)) {}

std::unique_ptr<Checkpoint> Checkpoint::open(const std::string& path) {
    auto file = std::make_unique<MappedFile>(path);  // IO_ERROR naming the path and the OS error
    const uint8_t* p = file->data();
    size_t n = file->size();
    if (n == 0) throw_format(path + ": empty file (not a .pth or .safetensors file)");

    // A zip (torch.save) starts with a local header, or, with bytes prepended to the archive, is recognised by its
    // end record. A safetensors file starts with its header length followed by the JSON object's '{'. The
    // safetensors test comes before the end-record search, whose signature could occur by chance in tensor data.
    bool zip_start = n >= 4 && load_le32(p) == 0x04034b50;
    bool json_start = n >= 9 && p[8] == '{';
    CheckpointFormat format;
    if (zip_start) {
        format = CheckpointFormat::Pth;
    } else if (json_start && load_le64(p) <= n - 8) {
        format = CheckpointFormat::Safetensors;
    } else if (ZipReader::looks_like_zip(p, n)) {
        format = CheckpointFormat::Pth;
    } else if (json_start) {
        format = CheckpointFormat::Safetensors;  // with a bad header length, reported by the reader
    } else {
        throw_format(path + ": not a .pth (zip) or .safetensors file");
    }

    auto ckpt = std::make_unique<Checkpoint>(path, format, std::move(file));
    if (format == CheckpointFormat::Pth) {
        read_pth(*ckpt);
    } else {
        read_safetensors(*ckpt);
    }
    return ckpt;
}

const TensorView* Checkpoint::find(const std::string& name) const {
    for (const TensorView& t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

void* Checkpoint::own(size_t nbytes) {
    // new[] aligns to __STDCPP_DEFAULT_NEW_ALIGNMENT__ (16), enough for every DType.
    owned_.push_back(std::make_unique_for_overwrite<unsigned char[]>(nbytes ? nbytes : 1));
    return owned_.back().get();
}

}  // namespace rwkv
