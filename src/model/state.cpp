#include "model/state.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <span>

#include "common/error.h"
#include "common/file_util.h"
#include "common/half.h"
#include "io/checkpoint.h"

namespace rwkv {
namespace {

// RecurrentState file layout, little-endian (docs/formats.md):
//   0  char[8]  "RWKVSTAT"
//   8  u32      version (1)
//   12 i32[10]  n_layer n_embd n_head head_size n_vocab n_ffn d_decay d_aaa d_value d_gate
//   52 u64      fingerprint (ModelConfig::fingerprint)
//   60 u64      n_floats
//   68 u32      0 (padding)
//   72 f32[n_floats] state data, layout of RecurrentState::data
//   .. u32      CRC-32 of every byte before it
constexpr char kMagic[8] = {'R', 'W', 'K', 'V', 'S', 'T', 'A', 'T'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 72;

int config_value(const ModelConfig& c, int i) {
    const int v[10] = {c.n_layer, c.n_embd,  c.n_head, c.head_size, c.n_vocab,
                       c.n_ffn,   c.d_decay, c.d_aaa,  c.d_value,   c.d_gate};
    return v[i];
}

template <typename T>
T read_le(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

}  // namespace

std::vector<uint8_t> serialize_state(const RecurrentState& state) {
    const ModelConfig& c = state.config;
    std::vector<uint8_t> bytes(kHeaderBytes + state.data.size() * 4 + 4, 0);
    std::memcpy(bytes.data(), kMagic, 8);
    std::memcpy(bytes.data() + 8, &kVersion, 4);
    for (int i = 0; i < 10; i++) {
        int32_t v = config_value(c, i);
        std::memcpy(bytes.data() + 12 + 4 * i, &v, 4);
    }
    uint64_t fp = c.fingerprint(), n = state.data.size();
    std::memcpy(bytes.data() + 52, &fp, 8);
    std::memcpy(bytes.data() + 60, &n, 8);
    std::memcpy(bytes.data() + kHeaderBytes, state.data.data(), n * 4);
    uint32_t crc = crc32(bytes.data(), bytes.size() - 4);
    std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
    return bytes;
}

void save_state(const RecurrentState& state, const std::string& path) {
    std::vector<uint8_t> bytes = serialize_state(state);
    write_file_atomically(path, bytes.data(), bytes.size());
}

namespace {

// Magic, version, the model's numbers, fingerprint and float count. Returns the float count (== the state's).
uint64_t check_header(const RecurrentState& state, const uint8_t* data, size_t size, const std::string& path) {
    const ModelConfig& c = state.config;
    const std::span<const uint8_t> b(data, size);
    if (b.size() < kHeaderBytes + 4 || std::memcmp(b.data(), kMagic, 8) != 0)
        throw_format(path + ": not a librwkv state file (bad magic or shorter than its header)");
    uint32_t version = read_le<uint32_t>(b.data() + 8);
    if (version != kVersion)
        throw_format(path + ": state file version " + std::to_string(version) + ", this build reads version " +
                     std::to_string(kVersion));
    static const char* names[10] = {"n_layer", "n_embd",  "n_head", "head_size", "n_vocab",
                                    "n_ffn",   "d_decay", "d_aaa",  "d_value",   "d_gate"};
    for (int i = 0; i < 10; i++) {
        int32_t v = read_le<int32_t>(b.data() + 12 + 4 * i);
        if (v != config_value(c, i))
            throw_format(path + ": state is for another model: " + names[i] + " " + std::to_string(v) +
                         ", the loaded model has " + std::to_string(config_value(c, i)));
    }
    uint64_t n = read_le<uint64_t>(b.data() + 60);
    if (read_le<uint64_t>(b.data() + 52) != c.fingerprint() || n != state.data.size())
        throw_format(path + ": state is for another model (fingerprint or size mismatch)");
    return n;
}

std::string size_mismatch(const std::string& path, uint64_t found, uint64_t expected) {
    return path + ": truncated or oversized state file: " + std::to_string(found) + " bytes, expected " +
           std::to_string(expected);
}

}  // namespace

void load_state(RecurrentState& state, const std::string& path) {
    // Never read more than a state file of this model can hold: a FIFO or a device (/dev/zero) would never end,
    // and a huge file would be read whole only to be refused. For an oversized file the header still says
    // whether it is another model's state, the likely cause.
    const uint64_t expected = kHeaderBytes + uint64_t(state.data.size()) * 4 + 4;
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
        if (!S_ISREG(st.st_mode)) throw_io(path + ": not a regular file");
        if (uint64_t(st.st_size) > expected) {
            std::vector<uint8_t> head(kHeaderBytes + 4);
            std::ifstream f(path, std::ios::binary);
            f.read(reinterpret_cast<char*>(head.data()), std::streamsize(head.size()));
            check_header(state, head.data(), size_t(f.gcount()), path);
            throw_format(size_mismatch(path, uint64_t(st.st_size), expected));
        }
    }
    std::vector<uint8_t> b = read_whole_file(path);
    deserialize_state(state, b.data(), b.size(), path);
}

void deserialize_state(RecurrentState& state, const uint8_t* data, size_t size, const std::string& path) {
    const uint64_t n = check_header(state, data, size, path);
    const std::span<const uint8_t> b(data, size);
    if (b.size() != kHeaderBytes + n * 4 + 4) throw_format(size_mismatch(path, b.size(), kHeaderBytes + n * 4 + 4));
    uint32_t crc = read_le<uint32_t>(b.data() + b.size() - 4);
    if (crc != crc32(b.data(), b.size() - 4)) throw_format(path + ": checksum mismatch: the state file is corrupt");
    std::memcpy(state.data.data(), b.data() + kHeaderBytes, n * 4);
}

void load_tuning_state(RecurrentState& state, const std::string& path) {
    const ModelConfig& c = state.config;
    std::unique_ptr<Checkpoint> ckpt = Checkpoint::open(path);
    const int64_t N = c.head_size, per_layer = int64_t(c.n_head) * N * N;
    std::vector<float> wkv(c.n_layer * per_layer);
    for (int l = 0; l < c.n_layer; l++) {
        std::string name = "blocks." + std::to_string(l) + ".att.time_state";
        const TensorView* t = ckpt->find(name);
        if (!t) throw_format(path + ": missing tensor '" + name + "' (a state-tuning file has one per layer)");
        if (t->shape != std::vector<int64_t>{c.n_head, N, N})
            throw_format(path + ": tensor '" + name + "': expected [" + std::to_string(c.n_head) + ", 64, 64], found " +
                         t->shape_string());
        float* out = wkv.data() + l * per_layer;
        const uint16_t* h = static_cast<const uint16_t*>(t->data);
        for (int64_t i = 0; i < per_layer; i++)
            out[i] = t->dtype == DType::F32   ? static_cast<const float*>(t->data)[i]
                     : t->dtype == DType::F16 ? f16_to_f32(h[i])
                                              : bf16_to_f32(h[i]);
    }
    if (ckpt->find("blocks." + std::to_string(c.n_layer) + ".att.time_state"))
        throw_format(path + ": has time_state for more than the model's " + std::to_string(c.n_layer) +
                     " layers: it was tuned for another model");
    std::fill(state.data.begin(), state.data.end(), 0.0f);
    for (int l = 0; l < c.n_layer; l++) std::copy_n(wkv.data() + l * per_layer, per_layer, state.wkv(l));
}

}  // namespace rwkv
