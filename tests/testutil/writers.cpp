#include "testutil/writers.h"

#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include <sys/mman.h>
#include <unistd.h>

namespace rwkv::test {

// ---------------------------------------------------------------- bytes

namespace {

void le(Bytes& b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void append(Bytes& b, const std::string& s) {
    b.insert(b.end(), s.begin(), s.end());
}
void append(Bytes& b, const Bytes& s) {
    b.insert(b.end(), s.begin(), s.end());
}

uint32_t crc32(const Bytes& data) {
    static uint32_t table[256];
    static bool init = false;
    if (!init) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        init = true;
    }
    uint32_t c = 0xFFFFFFFFu;
    for (uint8_t x : data) c = table[(c ^ x) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

}  // namespace

void put_le16(Bytes& b, size_t pos, uint16_t v) {
    for (int i = 0; i < 2; i++) b.at(pos + i) = static_cast<uint8_t>(v >> (8 * i));
}
void put_le32(Bytes& b, size_t pos, uint32_t v) {
    for (int i = 0; i < 4; i++) b.at(pos + i) = static_cast<uint8_t>(v >> (8 * i));
}
void put_le64(Bytes& b, size_t pos, uint64_t v) {
    for (int i = 0; i < 8; i++) b.at(pos + i) = static_cast<uint8_t>(v >> (8 * i));
}

size_t find_sig(const Bytes& b, uint32_t sig) {
    for (size_t i = 0; i + 4 <= b.size(); i++) {
        uint32_t v = b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (uint32_t(b[i + 3]) << 24);
        if (v == sig) return i;
    }
    return SIZE_MAX;
}

size_t rfind_sig(const Bytes& b, uint32_t sig) {
    for (size_t i = b.size() < 4 ? 0 : b.size() - 4 + 1; i-- > 0;) {
        uint32_t v = b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (uint32_t(b[i + 3]) << 24);
        if (v == sig) return i;
    }
    return SIZE_MAX;
}

// ---------------------------------------------------------------- zip

Bytes make_zip(const std::vector<ZipFileEntry>& entries, const ZipOptions& opt) {
    Bytes out(opt.prefix_bytes, 'J');
    const size_t base = out.size();  // offsets in the archive are relative to here
    struct Central {
        uint64_t local, size;
        uint32_t crc;
        uint16_t method;
    };
    std::vector<Central> central;
    const uint16_t flags = opt.torch_layout ? 0x0808 : 0;

    for (const ZipFileEntry& e : entries) {
        Central c{out.size() - base, e.data.size(), crc32(e.data), uint16_t(e.name == opt.compressed_entry ? 8 : 0)};
        size_t pad = 0;
        if (opt.torch_layout) {
            size_t header_end = out.size() + 30 + e.name.size() + 4;
            pad = (64 - header_end % 64) % 64;
        }
        le(out, 0x04034b50, 4);
        le(out, opt.zip64 ? 45 : 20, 2);  // version needed
        le(out, flags, 2);
        le(out, c.method, 2);
        le(out, 0, 2);  // time
        le(out, 0, 2);  // date
        le(out, opt.torch_layout ? 0 : c.crc, 4);
        le(out, opt.torch_layout ? 0 : c.size, 4);
        le(out, opt.torch_layout ? 0 : c.size, 4);
        le(out, e.name.size(), 2);
        le(out, opt.torch_layout ? 4 + pad : 0, 2);
        append(out, e.name);
        if (opt.torch_layout) {
            le(out, 0x4246, 2);  // "FB"
            le(out, pad, 2);
            out.insert(out.end(), pad, 'Z');
        }
        append(out, e.data);
        if (opt.torch_layout) {  // data descriptor
            le(out, 0x08074b50, 4);
            le(out, c.crc, 4);
            le(out, c.size, 4);
            le(out, c.size, 4);
        }
        central.push_back(c);
    }

    const uint64_t cd_offset = out.size() - base;
    for (size_t i = 0; i < entries.size(); i++) {
        const ZipFileEntry& e = entries[i];
        const Central& c = central[i];
        le(out, 0x02014b50, 4);
        le(out, opt.zip64 ? 45 : 20, 2);  // made by
        le(out, opt.zip64 ? 45 : 20, 2);  // needed
        le(out, flags, 2);
        le(out, c.method, 2);
        le(out, 0, 2);
        le(out, 0, 2);
        le(out, c.crc, 4);
        le(out, opt.zip64 ? 0xFFFFFFFF : c.size, 4);
        le(out, opt.zip64 ? 0xFFFFFFFF : c.size, 4);
        le(out, e.name.size(), 2);
        le(out, opt.zip64 ? 28 : 0, 2);  // extra length
        le(out, 0, 2);                   // comment
        le(out, 0, 2);                   // disk
        le(out, 0, 2);                   // internal attributes
        le(out, 0, 4);                   // external attributes
        le(out, opt.zip64 ? 0xFFFFFFFF : c.local, 4);
        append(out, e.name);
        if (opt.zip64) {  // uncompressed size, compressed size, local header offset
            le(out, 0x0001, 2);
            le(out, 24, 2);
            le(out, c.size, 8);
            le(out, c.size, 8);
            le(out, c.local, 8);
        }
    }
    const uint64_t cd_size = out.size() - base - cd_offset;

    if (opt.zip64) {
        uint64_t rec = out.size() - base;
        le(out, 0x06064b50, 4);
        le(out, 44, 8);  // size of the rest of the record
        le(out, 45, 2);
        le(out, 45, 2);
        le(out, 0, 4);
        le(out, 0, 4);
        le(out, entries.size(), 8);
        le(out, entries.size(), 8);
        le(out, cd_size, 8);
        le(out, cd_offset, 8);
        le(out, 0x07064b50, 4);  // locator
        le(out, 0, 4);
        le(out, rec, 8);
        le(out, 1, 4);
    }
    le(out, 0x06054b50, 4);
    le(out, 0, 2);
    le(out, 0, 2);
    le(out, opt.zip64 ? 0xFFFF : entries.size(), 2);
    le(out, opt.zip64 ? 0xFFFF : entries.size(), 2);
    le(out, opt.zip64 ? 0xFFFFFFFF : cd_size, 4);
    le(out, opt.zip64 ? 0xFFFFFFFF : cd_offset, 4);
    le(out, 0, 2);
    return out;
}

// ---------------------------------------------------------------- pickle

PickleBuilder& PickleBuilder::proto(uint8_t v) {
    b_.push_back(0x80);
    b_.push_back(v);
    return *this;
}
PickleBuilder& PickleBuilder::op(uint8_t opcode) {
    b_.push_back(opcode);
    return *this;
}
PickleBuilder& PickleBuilder::raw(const Bytes& b) {
    append(b_, b);
    return *this;
}
PickleBuilder& PickleBuilder::global(const std::string& module, const std::string& name) {
    b_.push_back('c');
    append(b_, module + "\n" + name + "\n");
    return *this;
}
PickleBuilder& PickleBuilder::str(const std::string& s) {
    b_.push_back('X');
    le(b_, s.size(), 4);
    append(b_, s);
    return *this;
}
PickleBuilder& PickleBuilder::integer(int64_t v) {
    if (v >= 0 && v < 256) {
        b_.push_back('K');
        le(b_, v, 1);
    } else if (v >= 0 && v < 65536) {
        b_.push_back('M');
        le(b_, v, 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        b_.push_back('J');
        le(b_, static_cast<uint32_t>(v), 4);
    } else {
        int n = 1;  // smallest two's-complement width
        while (n < 8 && !(v >= -(int64_t(1) << (8 * n - 1)) && v < (int64_t(1) << (8 * n - 1)))) n++;
        b_.push_back(0x8a);
        b_.push_back(static_cast<uint8_t>(n));
        le(b_, static_cast<uint64_t>(v), n);
    }
    return *this;
}
PickleBuilder& PickleBuilder::put(uint32_t index) {
    if (index < 256) {
        b_.push_back('q');
        le(b_, index, 1);
    } else {
        b_.push_back('r');
        le(b_, index, 4);
    }
    return *this;
}
PickleBuilder& PickleBuilder::get(uint32_t index) {
    if (index < 256) {
        b_.push_back('h');
        le(b_, index, 1);
    } else {
        b_.push_back('j');
        le(b_, index, 4);
    }
    return *this;
}
PickleBuilder& PickleBuilder::int_tuple(const std::vector<int64_t>& v) {
    if (v.empty()) return empty_tuple();
    if (v.size() > 3) mark();
    for (int64_t x : v) integer(x);
    if (v.size() == 1) return op(0x85);
    if (v.size() == 2) return op(0x86);
    if (v.size() == 3) return op(0x87);
    return tuple();
}

namespace {

std::string storage_key(const TensorSpec& t, size_t i) {
    return t.storage_key.empty() ? std::to_string(i) : t.storage_key;
}

std::vector<int64_t> contiguous_stride(const std::vector<int64_t>& shape) {
    std::vector<int64_t> s(shape.size());
    int64_t acc = 1;
    for (size_t d = shape.size(); d-- > 0;) {
        s[d] = acc;
        acc = static_cast<int64_t>(static_cast<uint64_t>(acc) * static_cast<uint64_t>(shape[d]));  // absurd shapes wrap
    }
    return s;
}

}  // namespace

Bytes state_dict_pickle(const std::vector<TensorSpec>& tensors, const PickleOptions& opt) {
    PickleBuilder p;
    p.proto(2);
    if (opt.ordered_dict) {
        p.global("collections", "OrderedDict").put(0).empty_tuple().reduce().put(1);
    } else {
        p.empty_dict().put(0);
    }
    for (size_t i = 0; i < tensors.size(); i++) {
        const TensorSpec& t = tensors[i];
        if (i % opt.batch == 0) p.mark();
        std::string type = t.storage_type;
        if (type.empty())
            type = t.dtype == DType::F32 ? "FloatStorage" : t.dtype == DType::F16 ? "HalfStorage" : "BFloat16Storage";
        int64_t numel = t.storage_numel >= 0 ? t.storage_numel : int64_t(t.data.size() / dtype_size(t.dtype));
        p.str(t.name).global("torch._utils", "_rebuild_tensor_v2");
        p.mark().mark().str("storage").global("torch", type).str(storage_key(t, i)).str("cpu").integer(numel).tuple();
        p.binpersid();
        p.integer(t.offset).int_tuple(t.shape).int_tuple(t.stride.empty() ? contiguous_stride(t.shape) : t.stride);
        p.newfalse().global("collections", "OrderedDict").empty_tuple().reduce().tuple().reduce();
        if (i % opt.batch == opt.batch - 1 || i + 1 == tensors.size()) p.setitems();
    }
    if (opt.module_metadata) {
        p.empty_dict().str("_metadata").global("collections", "OrderedDict").empty_tuple().reduce();
        p.mark().str("").empty_dict().str("version").integer(1).setitem().setitems();
        p.setitem().build();
    }
    p.stop();
    return p.bytes();
}

namespace {

void add_metadata_entries(std::vector<ZipFileEntry>& entries, const std::string& prefix) {
    entries.push_back({prefix + "/version", {'3', '\n'}});
    entries.push_back({prefix + "/.format_version", {'1'}});
    entries.push_back({prefix + "/.storage_alignment", {'6', '4'}});
    entries.push_back({prefix + "/byteorder", {'l', 'i', 't', 't', 'l', 'e'}});
}

}  // namespace

Bytes make_pth_with_pickle(const Bytes& pickle, const std::vector<ZipFileEntry>& storages, const PthOptions& opt) {
    std::vector<ZipFileEntry> entries;
    entries.push_back({opt.prefix + "/data.pkl", pickle});
    for (const ZipFileEntry& s : storages) entries.push_back({opt.prefix + "/data/" + s.name, s.data});
    add_metadata_entries(entries, opt.prefix);
    return make_zip(entries, opt.zip);
}

Bytes make_pth(const std::vector<TensorSpec>& tensors, const PthOptions& opt) {
    std::vector<ZipFileEntry> storages;
    std::map<std::string, bool> written;
    if (!opt.omit_storages) {
        for (size_t i = 0; i < tensors.size(); i++) {
            std::string key = storage_key(tensors[i], i);
            if (written[key]) continue;
            written[key] = true;
            storages.push_back({key, tensors[i].data});
        }
    }
    return make_pth_with_pickle(state_dict_pickle(tensors, opt.pickle), storages, opt);
}

// ---------------------------------------------------------------- safetensors

Bytes make_safetensors_raw(const std::string& header, const Bytes& data, bool pad) {
    std::string h = header;
    if (pad) h.append((8 - h.size() % 8) % 8, ' ');
    Bytes out;
    le(out, h.size(), 8);
    append(out, h);
    append(out, data);
    return out;
}

Bytes make_safetensors(const std::vector<SafetensorsSpec>& tensors) {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    header["__metadata__"] = {{"format", "pt"}};
    Bytes data;
    for (const SafetensorsSpec& t : tensors) {
        header[t.name] = {
            {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.data.size()}}};
        append(data, t.data);
    }
    return make_safetensors_raw(header.dump(), data);
}

// ---------------------------------------------------------------- in-memory files

MemFile::MemFile() {
    fd_ = memfd_create("rwkv-test", MFD_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("memfd_create failed");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
}

MemFile::~MemFile() {
    close(fd_);
}

void MemFile::write(const Bytes& bytes) {
    if (ftruncate(fd_, 0) != 0) throw std::runtime_error("ftruncate failed");
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
        if (n <= 0) throw std::runtime_error("pwrite failed");
        done += static_cast<size_t>(n);
    }
}

// ---------------------------------------------------------------- values

namespace {

uint32_t float_bits(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    return x;
}

uint16_t f32_to_f16(float f) {
    uint32_t x = float_bits(f);
    uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7FFFFFFF;
    if (ax > 0x7F800000) return sign | 0x7E00;                 // NaN
    if (ax >= 0x477FF000) return sign | 0x7C00;                // >= 65520 rounds to infinity
    if (ax < 0x38800000) {                                     // below 2^-14: subnormal half, value = m * 2^-24
        float m = std::nearbyint(std::fabs(f) * 16777216.0f);  // exact scaling, round to nearest even
        return sign | static_cast<uint16_t>(m);                // m == 1024 is the smallest normal, encoded the same
    }
    uint32_t h = ((((ax >> 23) - 127 + 15) << 10) | ((ax & 0x7FFFFF) >> 13));
    uint32_t rem = ax & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;  // a carry moves into the exponent correctly
    return sign | static_cast<uint16_t>(h);
}

uint16_t f32_to_bf16(float f) {
    uint32_t x = float_bits(f);
    if ((x & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((x >> 16) | 0x40);
    return static_cast<uint16_t>((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

}  // namespace

float f16_to_f32(uint16_t h) {
    uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    uint32_t e = (h >> 10) & 0x1F, m = h & 0x3FF;
    if (e == 0) {
        float v = std::ldexp(static_cast<float>(m), -24);
        return sign ? -v : v;
    }
    uint32_t bits = e == 31 ? (sign | 0x7F800000 | (m << 13)) : (sign | ((e + 112) << 23) | (m << 13));
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

float bf16_to_f32(uint16_t h) {
    uint32_t bits = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

Bytes f32_bytes(const std::vector<float>& v) {
    Bytes b;
    for (float f : v) le(b, float_bits(f), 4);
    return b;
}
Bytes f16_bytes(const std::vector<float>& v) {
    Bytes b;
    for (float f : v) le(b, f32_to_f16(f), 2);
    return b;
}
Bytes bf16_bytes(const std::vector<float>& v) {
    Bytes b;
    for (float f : v) le(b, f32_to_bf16(f), 2);
    return b;
}

std::vector<float> to_f32(const TensorView& t) {
    size_t n = static_cast<size_t>(t.numel());
    std::vector<float> out(n);
    const uint8_t* p = static_cast<const uint8_t*>(t.data);
    for (size_t i = 0; i < n; i++) {
        if (t.dtype == DType::F32) {
            std::memcpy(&out[i], p + 4 * i, 4);
        } else {
            uint16_t h;
            std::memcpy(&h, p + 2 * i, 2);
            out[i] = t.dtype == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
        }
    }
    return out;
}

}  // namespace rwkv::test
