#include "io/safetensors_reader.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"
#include "io/checked.h"

namespace rwkv {

namespace {

struct Entry {
    TensorView view;
    uint64_t begin = 0, end = 0;  // data_offsets, relative to the byte buffer after the header
};

// Non-negative JSON integer (floats, negatives and booleans are rejected).
bool json_u64(const nlohmann::json& j, uint64_t* out) {
    if (j.is_number_unsigned()) {
        *out = j.get<uint64_t>();
        return true;
    }
    if (j.is_number_integer() && j.get<int64_t>() >= 0) {
        *out = static_cast<uint64_t>(j.get<int64_t>());
        return true;
    }
    return false;
}

// Checks the header's shape as a stream of SAX events: nesting depth, number of values, number of tensors and
// repeated top-level keys. Returning false stops the parse; `error` then says why.
class HeaderScan : public nlohmann::json_sax<nlohmann::json> {
  public:
    std::string error;

    bool null() override { return value(); }
    bool boolean(bool) override { return value(); }
    bool number_integer(number_integer_t) override { return value(); }
    bool number_unsigned(number_unsigned_t) override { return value(); }
    bool number_float(number_float_t, const string_t&) override { return value(); }
    bool string(string_t&) override { return value(); }
    bool binary(binary_t&) override { return value(); }
    bool start_object(std::size_t) override { return open(); }
    bool start_array(std::size_t) override { return open(); }
    bool end_object() override { return close(); }
    bool end_array() override { return close(); }
    bool key(string_t& k) override {
        if (depth_ != 1) return true;
        if (k != "__metadata__" && ++n_tensors_ > kSafetensorsMaxTensors)
            return stop("header has more than " + std::to_string(kSafetensorsMaxTensors) + " tensors");
        if (!seen_.insert(k).second) return stop("tensor '" + k + "' appears twice in the header");
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
        return stop("header is not valid JSON (or not valid UTF-8)");
    }

  private:
    bool stop(std::string why) {
        error = std::move(why);
        return false;
    }
    bool value() {
        if (++n_values_ > kSafetensorsMaxValues)
            return stop("header has more than " + std::to_string(kSafetensorsMaxValues) + " JSON values");
        return true;
    }
    bool open() {
        if (++depth_ > kSafetensorsMaxDepth)
            return stop("header is nested deeper than " + std::to_string(kSafetensorsMaxDepth) +
                        " levels (object, tensor entry, shape)");
        return value();
    }
    bool close() {
        depth_--;
        return true;
    }

    int depth_ = 0;
    size_t n_values_ = 0, n_tensors_ = 0;
    std::set<std::string> seen_;
};

}  // namespace

void read_safetensors(Checkpoint& ckpt) {
    const std::string& path = ckpt.path();
    const uint8_t* data = ckpt.file().data();
    const uint64_t size = ckpt.file().size();
    auto fail = [&](const std::string& what) { throw_format(path + ": safetensors: " + what); };

    if (size < 8) fail("file of " + std::to_string(size) + " bytes is too short for the 8-byte header length");
    uint64_t n = load_le64(data);
    if (n > size - 8) {
        fail("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size - 8) +
             " bytes follow the length)");
    }
    if (n > kSafetensorsMaxHeader)
        fail("header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(kSafetensorsMaxHeader));
    const uint8_t* header = data + 8;
    const uint8_t* buffer = header + n;
    const uint64_t buffer_size = size - 8 - n;

    // First a SAX scan: it enforces the limits and catches a repeated tensor name (which the DOM would silently
    // merge) without building anything. Then the DOM, with no parser callback: nlohmann's callback parser looks
    // through the whole parent object at the end of every object, which is quadratic in the number of tensors.
    HeaderScan scan;
    if (!nlohmann::json::sax_parse(header, buffer, &scan)) fail(scan.error);
    nlohmann::json j = nlohmann::json::parse(header, buffer, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) fail("header is not valid JSON (or not valid UTF-8)");
    if (!j.is_object()) fail("header is a JSON " + std::string(j.type_name()) + ", not an object");

    std::vector<Entry> entries;
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& name = it.key();
        const nlohmann::json& v = it.value();
        if (name == "__metadata__") {
            if (!v.is_object()) fail("__metadata__ is not an object");
            for (auto m = v.begin(); m != v.end(); ++m)
                if (!m.value().is_string()) fail("__metadata__ value '" + m.key() + "' is not a string");
            continue;
        }
        std::string where = "tensor '" + name + "': ";
        if (!v.is_object()) fail(where + "entry is not an object");
        auto dt = v.find("dtype");
        auto sh = v.find("shape");
        auto off = v.find("data_offsets");
        if (dt == v.end() || sh == v.end() || off == v.end()) fail(where + "needs dtype, shape and data_offsets");

        Entry e;
        e.view.name = name;
        if (!dt->is_string()) fail(where + "dtype is not a string");
        std::string dtype = dt->get<std::string>();
        if (dtype == "F32") {
            e.view.dtype = DType::F32;
        } else if (dtype == "F16") {
            e.view.dtype = DType::F16;
        } else if (dtype == "BF16") {
            e.view.dtype = DType::BF16;
        } else {
            fail(where + "dtype '" + dtype + "' is not supported (F32, F16 and BF16 only)");
        }

        if (!sh->is_array()) fail(where + "shape is not an array");
        constexpr uint64_t kMaxNumel = INT64_MAX / 8;
        uint64_t numel = 1;
        for (const nlohmann::json& d : *sh) {
            uint64_t dim;
            if (!json_u64(d, &dim) || dim > kMaxNumel) fail(where + "shape " + sh->dump() + " has a bad dimension");
            e.view.shape.push_back(static_cast<int64_t>(dim));
            if (!checked_mul(numel, dim, &numel) || numel > kMaxNumel)
                fail(where + "shape " + sh->dump() + " has too many elements");
        }

        if (!off->is_array() || off->size() != 2 || !json_u64((*off)[0], &e.begin) || !json_u64((*off)[1], &e.end))
            fail(where + "data_offsets is not a [begin, end] pair of non-negative integers");
        if (e.begin > e.end) fail(where + "data_offsets " + off->dump() + " has begin > end");
        if (e.end > buffer_size) {
            fail(where + "data_offsets " + off->dump() + " run past the end of the data (" +
                 std::to_string(buffer_size) + " bytes)");
        }
        uint64_t nbytes = numel * dtype_size(e.view.dtype);  // numel <= INT64_MAX / 8: no overflow
        if (e.end - e.begin != nbytes) {
            fail(where + "data_offsets " + off->dump() + " span " + std::to_string(e.end - e.begin) +
                 " bytes, but shape " + sh->dump() + " of " + dtype + " needs " + std::to_string(nbytes));
        }
        entries.push_back(std::move(e));
    }

    // File order; tensors must not share bytes.
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    for (size_t i = 1; i < entries.size(); i++) {
        const Entry& a = entries[i - 1];
        const Entry& b = entries[i];
        if (b.begin < a.end) {
            fail("tensors '" + a.view.name + "' [" + std::to_string(a.begin) + ", " + std::to_string(a.end) +
                 ") and '" + b.view.name + "' [" + std::to_string(b.begin) + ", " + std::to_string(b.end) +
                 ") overlap");
        }
    }

    for (Entry& e : entries) {
        const uint8_t* p = buffer + e.begin;
        size_t nbytes = static_cast<size_t>(e.end - e.begin);
        if (reinterpret_cast<uintptr_t>(p) % dtype_size(e.view.dtype) != 0) {
            // The format does not promise alignment (the reference writer pads the header to 8 bytes, others may
            // not); copy so that users can read the data as float/uint16 arrays.
            void* dst = ckpt.own(nbytes);
            std::memcpy(dst, p, nbytes);
            p = static_cast<const uint8_t*>(dst);
        }
        e.view.data = p;
        ckpt.add(std::move(e.view));
    }
}

}  // namespace rwkv
