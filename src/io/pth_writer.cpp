#include "io/pth_writer.h"

#include <array>
#include <map>
#include <set>

#include "common/error.h"
#include "io/safetensors_writer.h"

namespace rwkv {

// ---- CRC-32, slicing-by-8 (Intel, Kounavis & Berry 2005): eight table lookups per 8 input bytes.

namespace {

using CrcTables = std::array<std::array<uint32_t, 256>, 8>;

const CrcTables& crc_tables() {
    static const CrcTables t = [] {
        CrcTables r{};
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            r[0][i] = c;
        }
        for (uint32_t i = 0; i < 256; i++)
            for (int s = 1; s < 8; s++) r[s][i] = (r[s - 1][i] >> 8) ^ r[0][r[s - 1][i] & 0xff];
        return r;
    }();
    return t;
}

}  // namespace

uint32_t crc32_fast(const void* data, size_t size, uint32_t crc) {
    const CrcTables& t = crc_tables();
    const uint8_t* p = static_cast<const uint8_t*>(data);
    crc = ~crc;
    for (; size >= 8; size -= 8, p += 8) {
        const uint32_t lo = (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24) ^ crc;
        const uint32_t hi = uint32_t(p[4]) | uint32_t(p[5]) << 8 | uint32_t(p[6]) << 16 | uint32_t(p[7]) << 24;
        crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^ t[3][hi & 0xff] ^
              t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    }
    for (; size > 0; size--, p++) crc = t[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
    return ~crc;
}

namespace {

// ---- pickle (protocol 2), emitting exactly what Python's pickler emits for a torch state dict

class Pickler {
  public:
    std::vector<uint8_t> out;

    void op(uint8_t o) { out.push_back(o); }
    void raw(const void* p, size_t n) {
        const uint8_t* b = static_cast<const uint8_t*>(p);
        out.insert(out.end(), b, b + n);
    }
    void le(uint64_t v, int bytes) {
        for (int i = 0; i < bytes; i++) out.push_back(uint8_t(v >> (8 * i)));
    }
    void put() {  // memoise the object just built (BINPUT / LONG_BINPUT)
        if (memo_ < 256) {
            op('q');
            le(memo_, 1);
        } else {
            op('r');
            le(memo_, 4);
        }
        memo_++;
    }
    void get(uint32_t index) {
        if (index < 256) {
            op('h');
            le(index, 1);
        } else {
            op('j');
            le(index, 4);
        }
    }
    // GLOBAL, memoised by name like Python's pickler (later uses are BINGETs).
    void global(const std::string& module, const std::string& name) {
        const std::string key = module + "\n" + name;
        if (auto it = memo_of_.find(key); it != memo_of_.end()) return get(it->second);
        op('c');
        raw(key.data(), key.size());
        op('\n');
        memo_of_[key] = memo_;
        put();
    }
    // BINUNICODE + BINPUT; `shared` strings (Python interns them) are memoised and reused.
    void unicode(const std::string& s, bool shared = false) {
        if (shared)
            if (auto it = memo_of_.find("str:" + s); it != memo_of_.end()) return get(it->second);
        op('X');
        le(s.size(), 4);
        raw(s.data(), s.size());
        if (shared) memo_of_["str:" + s] = memo_;
        put();
    }
    void integer(int64_t v) {
        if (v >= 0 && v <= 0xff) {
            op('K');
            le(uint64_t(v), 1);
        } else if (v >= 0 && v <= 0xffff) {
            op('M');
            le(uint64_t(v), 2);
        } else if (v >= INT32_MIN && v <= INT32_MAX) {
            op('J');
            le(uint64_t(v), 4);
        } else {  // LONG1: little-endian two's complement, shortest form
            std::vector<uint8_t> bytes;
            int64_t x = v;
            do {
                bytes.push_back(uint8_t(x & 0xff));
                x >>= 8;
            } while (!((x == 0 && !(bytes.back() & 0x80)) || (x == -1 && (bytes.back() & 0x80))));
            op(0x8a);
            le(bytes.size(), 1);
            raw(bytes.data(), bytes.size());
        }
    }
    void int_tuple(const std::vector<int64_t>& v) {
        if (v.empty()) return op(')');  // EMPTY_TUPLE, not memoised
        if (v.size() > 3) op('(');
        for (int64_t x : v) integer(x);
        static const uint8_t kTupleN[4] = {0, 0x85, 0x86, 0x87};
        op(v.size() > 3 ? uint8_t('t') : kTupleN[v.size()]);
        put();
    }

  private:
    uint32_t memo_ = 0;
    std::map<std::string, uint32_t> memo_of_;
};

const char* storage_type(DType t) {
    switch (t) {
        case DType::F32:
            return "FloatStorage";
        case DType::F16:
            return "HalfStorage";
        case DType::BF16:
            return "BFloat16Storage";
    }
    return "?";
}

std::vector<uint8_t> state_dict_pickle(const std::vector<const TensorView*>& tensors) {
    constexpr size_t kBatch = 1000;  // pickle's _BATCHSIZE
    Pickler p;
    p.op(0x80);  // PROTO 2
    p.op(2);
    p.global("collections", "OrderedDict");
    p.op(')');
    p.op('R');
    p.put();
    for (size_t begin = 0; begin < tensors.size(); begin += kBatch) {
        const size_t end = std::min(tensors.size(), begin + kBatch);
        if (end - begin > 1) p.op('(');  // MARK
        for (size_t i = begin; i < end; i++) {
            const TensorView& t = *tensors[i];
            p.unicode(t.name);
            p.global("torch._utils", "_rebuild_tensor_v2");
            p.op('(');
            p.op('(');  // the persistent id tuple
            p.unicode("storage", true);
            p.global("torch", storage_type(t.dtype));
            p.unicode(std::to_string(i));
            p.unicode("cpu", true);
            p.integer(t.numel());
            p.op('t');
            p.put();
            p.op('Q');     // BINPERSID
            p.integer(0);  // storage offset
            p.int_tuple(t.shape);
            std::vector<int64_t> stride(t.shape.size());
            int64_t s = 1;
            for (size_t d = t.shape.size(); d-- > 0;) {
                stride[d] = s;
                s *= t.shape[d];
            }
            p.int_tuple(stride);
            p.op(0x89);                              // NEWFALSE: requires_grad
            p.global("collections", "OrderedDict");  // backward hooks: OrderedDict()
            p.op(')');
            p.op('R');
            p.put();
            p.op('t');
            p.put();
            p.op('R');
            p.put();
        }
        p.op(end - begin > 1 ? 'u' : 's');  // SETITEMS / SETITEM
    }
    p.op('.');
    return std::move(p.out);
}

// ---- zip (APPNOTE.TXT), laid out as torch's PyTorchStreamWriter (miniz) does

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kDescriptorSig = 0x08074b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50, kZip64LocatorSig = 0x07064b50, kEocdSig = 0x06054b50;
constexpr uint16_t kFlags = 0x0808;  // bit 3: sizes in a data descriptor; bit 11: UTF-8 names
constexpr uint64_t kAlignment = 64;
constexpr size_t kCrcChunk = size_t(16) << 20;

struct Bytes {
    std::vector<uint8_t> b;
    void u16(uint64_t v) { le(v, 2); }
    void u32(uint64_t v) { le(v, 4); }
    void u64(uint64_t v) { le(v, 8); }
    void le(uint64_t v, int n) {
        for (int i = 0; i < n; i++) b.push_back(uint8_t(v >> (8 * i)));
    }
    void str(const std::string& s) { b.insert(b.end(), s.begin(), s.end()); }
};

struct CentralEntry {
    std::string name;
    uint32_t crc;
    uint64_t size, offset;
};

class ZipWriter {
  public:
    ZipWriter(AtomicFileWriter& out, uint64_t zip64_threshold) : out_(out), thr_(zip64_threshold) {}

    void add(const std::string& name, const void* data, uint64_t size) {
        if (name.size() > 0xffff) throw_invalid("entry name too long for a zip: " + name.substr(0, 80) + "...");
        const uint64_t offset = out_.offset();
        const bool zip64_local = size >= thr_;  // then the descriptor holds 64-bit sizes
        Bytes extra;
        if (zip64_local) {  // ZIP64 extra with zero sizes (they follow in the descriptor)
            extra.u16(0x0001);
            extra.u16(16);
            extra.u64(0);
            extra.u64(0);
        }
        // "FB" padding so that the data starts at a multiple of 64, as torch writes it.
        const uint64_t start = offset + 30 + name.size() + extra.b.size() + 4;
        const uint64_t pad = (kAlignment - start % kAlignment) % kAlignment;
        extra.u16(0x4246);  // "FB"
        extra.u16(pad);
        extra.b.resize(extra.b.size() + pad, 0);

        Bytes h;
        h.u32(kLocalSig);
        h.u16(zip64_local ? 45 : 0);  // version needed (torch writes 0)
        h.u16(kFlags);
        h.u16(0);  // STORED
        h.u16(0);  // time
        h.u16(0);  // date
        h.u32(0);  // CRC, in the descriptor
        h.u32(zip64_local ? 0xFFFFFFFF : 0);
        h.u32(zip64_local ? 0xFFFFFFFF : 0);
        h.u16(name.size());
        h.u16(extra.b.size());
        h.str(name);
        h.b.insert(h.b.end(), extra.b.begin(), extra.b.end());
        out_.write(h.b.data(), h.b.size());

        uint32_t crc = 0;
        const uint8_t* p = static_cast<const uint8_t*>(data);
        for (uint64_t done = 0; done < size;) {
            const size_t n = size_t(std::min<uint64_t>(kCrcChunk, size - done));
            crc = crc32_fast(p + done, n, crc);
            out_.write(p + done, n);
            done += n;
        }

        Bytes d;
        d.u32(kDescriptorSig);
        d.u32(crc);
        d.le(size, zip64_local ? 8 : 4);
        d.le(size, zip64_local ? 8 : 4);
        out_.write(d.b.data(), d.b.size());
        entries_.push_back({name, crc, size, offset});
    }

    void finish() {
        const uint64_t cd_offset = out_.offset();
        for (const CentralEntry& e : entries_) {
            const bool big = e.size >= thr_, far = e.offset >= thr_;
            Bytes extra;
            if (big || far) {
                extra.u16(0x0001);
                extra.u16(8 * ((big ? 2 : 0) + (far ? 1 : 0)));
                if (big) extra.u64(e.size), extra.u64(e.size);  // uncompressed, compressed
                if (far) extra.u64(e.offset);
            }
            Bytes c;
            c.u32(kCentralSig);
            c.u16(0);  // version made by (torch writes 0)
            c.u16(big || far ? 45 : 0);
            c.u16(kFlags);
            c.u16(0);
            c.u16(0);
            c.u16(0);
            c.u32(e.crc);
            c.u32(big ? 0xFFFFFFFF : e.size);
            c.u32(big ? 0xFFFFFFFF : e.size);
            c.u16(e.name.size());
            c.u16(extra.b.size());
            c.u16(0);  // comment
            c.u16(0);  // disk
            c.u16(0);  // internal attributes
            c.u32(0);  // external attributes
            c.u32(far ? 0xFFFFFFFF : e.offset);
            c.str(e.name);
            c.b.insert(c.b.end(), extra.b.begin(), extra.b.end());
            out_.write(c.b.data(), c.b.size());
        }
        const uint64_t cd_size = out_.offset() - cd_offset, n = entries_.size();

        // ZIP64 end record and locator, always (as torch's miniz), then the classic end record.
        const uint64_t zip64_eocd = out_.offset();
        Bytes z;
        z.u32(kZip64EocdSig);
        z.u64(44);      // size of the rest of the record
        z.u16(0x031e);  // made by: Unix, 3.0 (as torch)
        z.u16(45);
        z.u32(0);
        z.u32(0);
        z.u64(n);
        z.u64(n);
        z.u64(cd_size);
        z.u64(cd_offset);
        z.u32(kZip64LocatorSig);
        z.u32(0);
        z.u64(zip64_eocd);
        z.u32(1);
        z.u32(kEocdSig);
        z.u16(0);
        z.u16(0);
        const uint64_t n16 = n >= std::min<uint64_t>(thr_, 0xFFFF) ? 0xFFFF : n;
        z.u16(n16);
        z.u16(n16);
        z.u32(cd_size >= thr_ ? 0xFFFFFFFF : cd_size);
        z.u32(cd_offset >= thr_ ? 0xFFFFFFFF : cd_offset);
        z.u16(0);
        out_.write(z.b.data(), z.b.size());
    }

  private:
    AtomicFileWriter& out_;
    uint64_t thr_;
    std::vector<CentralEntry> entries_;
};

// torch names the archive's top folder after the file: its base name without the extension.
std::string archive_prefix(const std::string& path) {
    std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
    if (size_t dot = base.rfind('.'); dot != std::string::npos && dot > 0) base.resize(dot);
    return base.empty() ? "archive" : base;
}

}  // namespace

void write_pth(const std::string& path, const std::vector<const TensorView*>& tensors) {
    write_pth(path, tensors, PthWriteOptions{});
}

void write_pth(const std::string& path, const std::vector<const TensorView*>& tensors, const PthWriteOptions& options) {
    std::set<std::string> names;
    for (const TensorView* t : tensors) {
        if (!t) throw_invalid(path + ": null tensor in the list to write");
        if (t->name.empty()) throw_invalid(path + ": a tensor has an empty name");
        if (!names.insert(t->name).second) throw_invalid(path + ": tensor '" + t->name + "' appears twice");
        if (!t->data && t->nbytes() > 0) throw_invalid(path + ": tensor '" + t->name + "' has no data");
    }
    const std::vector<uint8_t> pickle = state_dict_pickle(tensors);
    const std::string prefix = archive_prefix(path);

    AtomicFileWriter out(path);
    ZipWriter zip(out, std::max<uint64_t>(1, options.zip64_threshold));
    zip.add(prefix + "/data.pkl", pickle.data(), pickle.size());
    zip.add(prefix + "/byteorder", "little", 6);
    for (size_t i = 0; i < tensors.size(); i++)
        zip.add(prefix + "/data/" + std::to_string(i), tensors[i]->data, tensors[i]->nbytes());
    zip.add(prefix + "/version", "3\n", 2);
    zip.finish();
    out.commit();
}

}  // namespace rwkv
