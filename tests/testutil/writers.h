// Writers for checkpoint files made inside tests: a torch.save-like STORED zip, a pickle builder for state
// dicts, and a safetensors writer. Each has switches to produce the malformed inputs the readers must reject.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/tensor.h"

namespace rwkv::test {

using Bytes = std::vector<uint8_t>;

// ---- zip

struct ZipFileEntry {
    std::string name;
    Bytes data;
};

struct ZipOptions {
    bool torch_layout = true;      // "FB" padding extra field aligning data to 64 bytes, flags 0x0808, zero
                                   // sizes in the local header and a data descriptor after the data
    std::string compressed_entry;  // this entry is marked with method 8 (deflate) in both headers
    bool zip64 = false;            // ZIP64 end record + locator, saturated EOCD fields and ZIP64 extra fields
                                   // (64-bit sizes and offset) on every central entry
    size_t prefix_bytes = 0;       // junk written before the archive (offsets stay relative to the zip)
};

Bytes make_zip(const std::vector<ZipFileEntry>& entries, const ZipOptions& opt = {});

// Position of the first / last occurrence of a 4-byte little-endian signature, or SIZE_MAX.
size_t find_sig(const Bytes& b, uint32_t sig);
size_t rfind_sig(const Bytes& b, uint32_t sig);
void put_le16(Bytes& b, size_t pos, uint16_t v);
void put_le32(Bytes& b, size_t pos, uint32_t v);
void put_le64(Bytes& b, size_t pos, uint64_t v);

// ---- pickle

// Emits pickle opcodes (protocol 2) one by one, for hand-made and hostile pickles.
class PickleBuilder {
  public:
    PickleBuilder& proto(uint8_t v = 2);
    PickleBuilder& op(uint8_t opcode);  // a bare opcode byte
    PickleBuilder& raw(const Bytes& b);
    PickleBuilder& global(const std::string& module, const std::string& name);
    PickleBuilder& str(const std::string& s);  // BINUNICODE
    PickleBuilder& integer(int64_t v);         // BININT1 / BININT2 / BININT / LONG1, whichever fits
    PickleBuilder& mark() { return op('('); }
    PickleBuilder& tuple() { return op('t'); }
    PickleBuilder& empty_tuple() { return op(')'); }
    PickleBuilder& empty_dict() { return op('}'); }
    PickleBuilder& reduce() { return op('R'); }
    PickleBuilder& setitems() { return op('u'); }
    PickleBuilder& setitem() { return op('s'); }
    PickleBuilder& binpersid() { return op('Q'); }
    PickleBuilder& newfalse() { return op(0x89); }
    PickleBuilder& build() { return op('b'); }
    PickleBuilder& stop() { return op('.'); }
    PickleBuilder& put(uint32_t index);  // BINPUT / LONG_BINPUT
    PickleBuilder& get(uint32_t index);  // BINGET / LONG_BINGET
    PickleBuilder& int_tuple(const std::vector<int64_t>& v);
    const Bytes& bytes() const { return b_; }

  private:
    Bytes b_;
};

// One tensor of a synthetic state dict. Data is the whole storage; by default the tensor is a contiguous
// view of all of it.
struct TensorSpec {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    std::vector<int64_t> stride;  // empty: contiguous
    int64_t offset = 0;           // storage offset, elements
    std::string storage_key;      // empty: the tensor's index
    int64_t storage_numel = -1;   // -1: data.size() / element size
    Bytes data;                   // the storage bytes
    std::string storage_type;     // empty: from dtype ("FloatStorage", ...)
};

struct PickleOptions {
    bool ordered_dict = true;      // OrderedDict() + REDUCE (false: EMPTY_DICT, as RWKV-PEFT)
    bool module_metadata = false;  // BUILD with {'_metadata': OrderedDict()} as module.state_dict() does
    size_t batch = 1000;           // pairs per SETITEMS
};

// The data.pkl for these tensors, as torch.save writes it.
Bytes state_dict_pickle(const std::vector<TensorSpec>& tensors, const PickleOptions& opt = {});

struct PthOptions {
    std::string prefix = "archive";
    ZipOptions zip;
    PickleOptions pickle;
    bool omit_storages = false;  // leave out the data/<key> entries
};

// A whole .pth: <prefix>/data.pkl, <prefix>/data/<key> per storage, <prefix>/version and the newer
// torch 2.x entries (.format_version, .storage_alignment, byteorder).
Bytes make_pth(const std::vector<TensorSpec>& tensors, const PthOptions& opt = {});
// A .pth around an arbitrary data.pkl (storages given by name -> bytes).
Bytes make_pth_with_pickle(const Bytes& pickle, const std::vector<ZipFileEntry>& storages, const PthOptions& opt = {});

// ---- safetensors

// 8-byte LE length + header text + data. The header is written as given (padded with spaces to a multiple
// of 8 when pad is true); no validation, so malformed headers are easy.
Bytes make_safetensors_raw(const std::string& header, const Bytes& data, bool pad = true);

struct SafetensorsSpec {
    std::string name;
    std::string dtype = "F32";  // as written in the header
    std::vector<int64_t> shape;
    Bytes data;
};
// A valid file with tensors laid out in the order given.
Bytes make_safetensors(const std::vector<SafetensorsSpec>& tensors);

// ---- in-memory files

// A file that lives in memory (memfd), reachable by path as /proc/self/fd/N: fuzz loops rewrite it thousands of
// times without touching the disk.
class MemFile {
  public:
    MemFile();
    ~MemFile();
    MemFile(const MemFile&) = delete;
    MemFile& operator=(const MemFile&) = delete;
    const std::string& path() const { return path_; }
    void write(const Bytes& bytes);  // replaces the whole content

  private:
    int fd_ = -1;
    std::string path_;
};

// ---- values

Bytes f32_bytes(const std::vector<float>& v);
Bytes f16_bytes(const std::vector<float>& v);   // round to nearest even
Bytes bf16_bytes(const std::vector<float>& v);  // round to nearest even
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t h);
// Tensor data converted to f32, in row-major order.
std::vector<float> to_f32(const TensorView& t);

}  // namespace rwkv::test
