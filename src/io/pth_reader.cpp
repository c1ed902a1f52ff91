#include "io/pth_reader.h"

#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "io/checked.h"
#include "io/pickle.h"
#include "io/zip_reader.h"

namespace rwkv {

namespace {

std::string shape_text(const std::vector<int64_t>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); i++) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
}

// Copies a strided view into `dst` in row-major order.
void gather(const uint8_t* base, const PickleTensor& t, size_t elem, uint8_t* dst) {
    size_t ndim = t.shape.size();
    std::vector<int64_t> index(ndim, 0);
    int64_t src = 0;  // element offset of `index` relative to base
    for (;;) {
        std::memcpy(dst, base + static_cast<size_t>(src) * elem, elem);
        dst += elem;
        size_t d = ndim;
        while (d > 0) {
            d--;
            if (++index[d] < t.shape[d]) {
                src += t.stride[d];
                break;
            }
            src -= (t.shape[d] - 1) * t.stride[d];
            index[d] = 0;
            if (d == 0) return;
        }
        if (ndim == 0) return;
    }
}

}  // namespace

void read_pth(Checkpoint& ckpt) {
    const std::string& path = ckpt.path();
    const MappedFile& file = ckpt.file();
    ZipReader zip(path, file.data(), file.size());

    // The archive's top folder is the saved file's base name ("archive" only when saving to a buffer).
    const ZipEntry* pkl = nullptr;
    const std::string suffix = "/data.pkl";
    for (const ZipEntry& e : zip.entries()) {
        if (e.name.size() <= suffix.size() || e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) != 0)
            continue;
        if (pkl) throw_format(path + ": two pickles in one archive: '" + pkl->name + "' and '" + e.name + "'");
        pkl = &e;
    }
    if (!pkl) throw_format(path + ": zip archive has no '<name>/data.pkl' entry (not a torch.save file)");
    std::string prefix = pkl->name.substr(0, pkl->name.size() - suffix.size());

    std::vector<PickleTensor> tensors = parse_torch_pickle(zip.entry_data(*pkl), pkl->size, path + ": " + pkl->name);

    struct StorageUse {
        DType dtype;
        int64_t numel;
    };
    std::unordered_map<std::string, StorageUse> storages;
    std::unordered_set<std::string> names;
    uint64_t copied = 0;  // bytes of strided views copied out so far, bounded by the file size
    for (const PickleTensor& t : tensors) {
        std::string where = path + ": tensor '" + t.key + "'";
        if (!names.insert(t.key).second) throw_format(path + ": duplicate tensor name '" + t.key + "'");
        size_t elem = dtype_size(t.dtype);

        // The storage: one zip entry of exactly numel * elem bytes, used with one dtype.
        std::string entry_name = prefix + "/data/" + t.storage_key;
        const ZipEntry* entry = zip.find(entry_name);
        if (!entry) throw_format(where + ": storage entry '" + entry_name + "' is missing from the archive");
        auto [use, fresh] = storages.emplace(t.storage_key, StorageUse{t.dtype, t.storage_numel});
        if (!fresh && (use->second.dtype != t.dtype || use->second.numel != t.storage_numel))
            throw_format(where + ": storage '" + t.storage_key + "' is used with two different types or sizes");
        uint64_t storage_bytes;
        if (!checked_mul(static_cast<uint64_t>(t.storage_numel), static_cast<uint64_t>(elem), &storage_bytes) ||
            storage_bytes != entry->size) {
            throw_format(where + ": storage '" + entry_name + "' has " + std::to_string(entry->size) +
                         " bytes, expected " + std::to_string(t.storage_numel) + " " + dtype_name(t.dtype) +
                         " elements");
        }

        // Elements: numel, and the last element the view reaches (offset + sum (n - 1) * stride).
        constexpr int64_t kMaxNumel = INT64_MAX / 8;
        int64_t numel = 1, last = t.offset;
        bool empty = false;
        for (int64_t n : t.shape) empty |= n == 0;
        for (size_t d = 0; d < t.shape.size() && !empty; d++) {
            int64_t reach;
            if (!checked_mul(numel, t.shape[d], &numel) || numel > kMaxNumel ||
                !checked_mul(t.shape[d] - 1, t.stride[d], &reach) || !checked_add(last, reach, &last)) {
                throw_format(where + ": shape " + shape_text(t.shape) + " with stride " + shape_text(t.stride) +
                             " is too large");
            }
        }
        if (empty) numel = 0;
        if (empty ? t.offset > t.storage_numel : last >= t.storage_numel) {
            throw_format(where + ": shape " + shape_text(t.shape) + ", stride " + shape_text(t.stride) + ", offset " +
                         std::to_string(t.offset) + " reaches element " + std::to_string(last) +
                         ", outside its storage of " + std::to_string(t.storage_numel) + " elements");
        }

        TensorView view;
        view.name = t.key;
        view.dtype = t.dtype;
        view.shape = t.shape;
        const uint8_t* base = zip.entry_data(*entry) + static_cast<size_t>(t.offset) * elem;
        if (numel == 0) {
            view.data = zip.entry_data(*entry);
            ckpt.add(std::move(view));
            continue;
        }

        bool contiguous = true;
        int64_t expected = 1;
        for (size_t d = t.shape.size(); d-- > 0;) {
            if (t.shape[d] != 1 && t.stride[d] != expected) contiguous = false;
            expected *= t.shape[d];  // <= numel, no overflow
        }
        bool aligned = reinterpret_cast<uintptr_t>(base) % elem == 0;
        if (contiguous && aligned) {
            view.data = base;  // zero copy
        } else {
            // A strided view (or misaligned data): copy it out. Repeated or zero strides can make the view larger
            // than its storage, so the copy is bounded by the file size.
            uint64_t nbytes = static_cast<uint64_t>(numel) * elem;
            if (nbytes > file.size()) {
                throw_format(where + ": strided view of " + std::to_string(numel) +
                             " elements is larger than the file; refusing to expand it");
            }
            // Each view alone fits, but many views of one small storage could still expand the file many times
            // over: all the copies together are bounded by the file size too.
            copied += nbytes;
            if (copied > file.size()) {
                throw_format(where + ": copies of strided views would take more than the file's " +
                             std::to_string(file.size()) + " bytes; refusing to expand it");
            }
            uint8_t* dst = static_cast<uint8_t*>(ckpt.own(static_cast<size_t>(nbytes)));
            if (contiguous) {
                std::memcpy(dst, base, static_cast<size_t>(nbytes));
            } else {
                gather(base, t, elem, dst);
            }
            view.data = dst;
        }
        ckpt.add(std::move(view));
    }
}

}  // namespace rwkv
