#include "io/zip_reader.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"
#include "io/checked.h"

namespace rwkv {

namespace {

// Record signatures and fixed sizes (APPNOTE.TXT 4.3).
constexpr uint32_t kLocalSig = 0x04034b50;      // "PK\3\4"
constexpr uint32_t kCentralSig = 0x02014b50;    // "PK\1\2"
constexpr uint32_t kEocdSig = 0x06054b50;       // "PK\5\6"
constexpr uint32_t kZip64EocdSig = 0x06064b50;  // "PK\6\6"
constexpr uint32_t kZip64LocSig = 0x07064b50;   // "PK\6\7"
constexpr uint64_t kLocalSize = 30;
constexpr uint64_t kCentralSize = 46;
constexpr uint64_t kEocdSize = 22;
constexpr uint64_t kZip64EocdSize = 56;
constexpr uint64_t kZip64LocSize = 20;
constexpr uint64_t kMaxComment = 0xFFFF;
constexpr uint16_t kZip64ExtraId = 0x0001;

// Position of the end-of-central-directory record: the last "PK\5\6" whose comment fits in the file.
bool find_eocd(const uint8_t* data, size_t size, uint64_t* pos) {
    if (size < kEocdSize) return false;
    uint64_t last = size - kEocdSize;
    uint64_t first = last > kMaxComment ? last - kMaxComment : 0;
    for (uint64_t p = last + 1; p-- > first;) {
        if (load_le32(data + p) != kEocdSig) continue;
        uint64_t comment = load_le16(data + p + 20);
        if (p + kEocdSize + comment <= size) {
            *pos = p;
            return true;
        }
    }
    return false;
}

}  // namespace

bool ZipReader::looks_like_zip(const uint8_t* data, size_t size) {
    uint64_t pos;
    return find_eocd(data, size, &pos);
}

ZipReader::ZipReader(const std::string& path, const uint8_t* data, size_t size)
    : path_(path), data_(data), size_(size) {
    auto fail = [&](const std::string& what) { throw_format(path_ + ": zip: " + what); };

    uint64_t eocd = 0;
    if (!find_eocd(data, size, &eocd))
        fail("no end-of-central-directory record in the last 64 KiB (truncated file or not a zip archive)");
    const uint8_t* e = data + eocd;
    if (load_le16(e + 4) != 0 || load_le16(e + 6) != 0) fail("multi-disk archives are not supported");
    uint64_t n_entries = load_le16(e + 10);
    uint64_t cd_size = load_le32(e + 12);
    uint64_t cd_offset = load_le32(e + 16);  // relative to the start of the zip
    uint64_t cd_end = eocd;                  // the central directory ends where the next record begins

    // ZIP64: a locator right before the EOCD points at the ZIP64 end record, which holds the 64-bit values.
    if (eocd >= kZip64LocSize && load_le32(data + eocd - kZip64LocSize) == kZip64LocSig) {
        uint64_t loc = eocd - kZip64LocSize;
        uint64_t stated = load_le64(data + loc + 8);
        if (load_le32(data + loc + 16) > 1) fail("multi-disk ZIP64 archives are not supported");
        // The record normally sits at its stated offset; with bytes prepended to the zip it sits right before
        // the locator instead (records with extensible data are only found at their stated offset).
        uint64_t rec = 0;
        bool found = false;
        if (range_inside(stated, kZip64EocdSize, loc) && load_le32(data + stated) == kZip64EocdSig) {
            rec = stated;
            found = true;
        } else if (loc >= kZip64EocdSize && load_le32(data + loc - kZip64EocdSize) == kZip64EocdSig) {
            rec = loc - kZip64EocdSize;
            found = true;
        }
        if (!found)
            fail("ZIP64 locator points at offset " + std::to_string(stated) + ", which holds no ZIP64 end record");
        const uint8_t* r = data + rec;
        if (load_le32(r + 16) != 0 || load_le32(r + 20) != 0) fail("multi-disk ZIP64 archives are not supported");
        uint64_t n64 = load_le64(r + 32);
        uint64_t size64 = load_le64(r + 40);
        uint64_t off64 = load_le64(r + 48);
        // Values in the plain EOCD that are not saturated must agree with the ZIP64 record.
        if ((n_entries != 0xFFFF && n_entries != n64) || (cd_size != 0xFFFFFFFF && cd_size != size64) ||
            (cd_offset != 0xFFFFFFFF && cd_offset != off64))
            fail("ZIP64 end record disagrees with the end-of-central-directory record");
        n_entries = n64;
        cd_size = size64;
        cd_offset = off64;
        cd_end = rec;
    } else if (n_entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
        fail("end-of-central-directory record has ZIP64 markers but no ZIP64 locator");
    }

    if (cd_size > cd_end) {
        fail("central directory size " + std::to_string(cd_size) + " is larger than the " + std::to_string(cd_end) +
             " bytes before the end record");
    }
    uint64_t cd_start = cd_end - cd_size;
    if (cd_start < cd_offset) {
        fail("central directory is stated at offset " + std::to_string(cd_offset) + " but ends at " +
             std::to_string(cd_end) + " with size " + std::to_string(cd_size) + " (bad central directory)");
    }
    uint64_t shift = cd_start - cd_offset;  // bytes before the zip (0 for an ordinary file)
    if (n_entries > cd_size / kCentralSize) {
        fail("central directory of " + std::to_string(cd_size) + " bytes cannot hold " + std::to_string(n_entries) +
             " entries");
    }

    entries_.reserve(n_entries);
    uint64_t p = cd_start;
    for (uint64_t i = 0; i < n_entries; i++) {
        std::string where = "central directory entry " + std::to_string(i) + " at offset " + std::to_string(p);
        if (!range_inside(p, kCentralSize, cd_end) || load_le32(data + p) != kCentralSig)
            fail(where + ": bad signature (bad central directory)");
        const uint8_t* c = data + p;
        uint16_t flags = load_le16(c + 8);
        uint16_t method = load_le16(c + 10);
        uint64_t csize = load_le32(c + 20);
        uint64_t usize = load_le32(c + 24);
        uint64_t name_len = load_le16(c + 28);
        uint64_t extra_len = load_le16(c + 30);
        uint64_t comment_len = load_le16(c + 32);
        uint64_t local = load_le32(c + 42);
        uint64_t var_len = name_len + extra_len + comment_len;
        if (!range_inside(p + kCentralSize, var_len, cd_end))
            fail(where + ": name or extra field runs past the central directory");
        ZipEntry entry;
        entry.name.assign(reinterpret_cast<const char*>(c + kCentralSize), name_len);
        where = "entry '" + entry.name + "'";

        // ZIP64 extended information: 64-bit values for exactly those fields that are saturated, in this order.
        const uint8_t* x = c + kCentralSize + name_len;
        bool need64 = usize == 0xFFFFFFFF || csize == 0xFFFFFFFF || local == 0xFFFFFFFF;
        bool seen64 = false;
        for (uint64_t q = 0; q + 4 <= extra_len;) {
            uint16_t id = load_le16(x + q);
            uint64_t len = load_le16(x + q + 2);
            if (len > extra_len - q - 4) fail(where + ": extra field runs past its end");
            if (id == kZip64ExtraId) {
                const uint8_t* z = x + q + 4;
                uint64_t used = 0;
                for (uint64_t* v : {&usize, &csize, &local}) {
                    if (*v != 0xFFFFFFFF) continue;
                    if (used + 8 > len) fail(where + ": ZIP64 extra field is too short");
                    *v = load_le64(z + used);
                    used += 8;
                }
                seen64 = true;
            }
            q += 4 + len;
        }
        if (need64 && !seen64) fail(where + ": sizes or offset are saturated but there is no ZIP64 extra field");

        if (flags & 0x0001) fail(where + ": encrypted entries are not supported");
        if (method != 0) {
            fail(where + ": compression method " + std::to_string(method) +
                 " is not supported (only STORED, method 0, as torch.save writes)");
        }
        if (csize != usize) {
            fail(where + ": STORED entry with compressed size " + std::to_string(csize) + " != uncompressed size " +
                 std::to_string(usize));
        }

        // Local header: its own name and extra lengths decide where the data starts (torch pads with "FB").
        uint64_t lh;
        if (!checked_add(local, shift, &lh) || !range_inside(lh, kLocalSize, cd_start) ||
            load_le32(data + lh) != kLocalSig) {
            fail(where + ": no local header at offset " + std::to_string(local) + " (bad central directory)");
        }
        uint64_t lname = load_le16(data + lh + 26);
        uint64_t lextra = load_le16(data + lh + 28);
        uint64_t start = lh + kLocalSize + lname + lextra;
        if (lname != name_len || !range_inside(lh + kLocalSize, lname, cd_start) ||
            std::memcmp(data + lh + kLocalSize, entry.name.data(), name_len) != 0) {
            fail(where + ": local header name does not match the central directory");
        }
        if (!range_inside(start, usize, cd_start)) {
            fail(where + ": data [" + std::to_string(start) + ", +" + std::to_string(usize) +
                 ") runs past the start of the central directory at " + std::to_string(cd_start) +
                 " (truncated or corrupt archive)");
        }
        entry.data_offset = start;
        entry.size = usize;
        if (!index_.emplace(entry.name, entries_.size()).second) fail(where + ": duplicate entry name");
        entries_.push_back(std::move(entry));
        p += kCentralSize + var_len;
    }
}

const ZipEntry* ZipReader::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second];
}

}  // namespace rwkv
