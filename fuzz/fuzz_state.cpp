// Fuzzes the state file reader (deserialize_state / load_state). The first input byte picks a mode that lets
// mutations get past the checks a random file fails at once:
//   bit 0  recompute the CRC-32 over the rest, so that the header and size checks are reached with a valid sum;
//   bit 1  overwrite the first 68 bytes with a valid header for fuzz_state_config(), so that only the size and
//          the checksum remain to be checked;
//   bit 2  read through load_state() from a file instead of from memory.
// Checked: a refused input leaves the state untouched; an accepted one sets it to exactly the file's floats.
// Seeds: serialize_state() of the fuzz config (fuzz_seeds); dictionary: fuzz/dict/state.dict.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/file_util.h"
#include "fuzz_common.h"
#include "model/state.h"
#include "testutil/writers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    static rwkv::test::MemFile file;
    static const rwkv::ModelConfig config = rwkv::fuzz::fuzz_state_config();
    const uint8_t mode = data[0];
    std::vector<uint8_t> bytes(data + 1, data + size);

    rwkv::RecurrentState state(config);
    for (size_t i = 0; i < state.data.size(); i++) state.data[i] = static_cast<float>(i) + 0.5f;
    const std::vector<float> before = state.data;

    if ((mode & 2) && bytes.size() >= 68) {
        std::vector<uint8_t> valid = rwkv::serialize_state(state);
        std::memcpy(bytes.data(), valid.data(), 68);
    }
    if ((mode & 1) && bytes.size() >= 4) {
        uint32_t crc = rwkv::crc32(bytes.data(), bytes.size() - 4);
        std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
    }

    bool ok = rwkv::fuzz::accepts([&] {
        if (mode & 4) {
            file.write(bytes);
            rwkv::load_state(state, file.path());
        } else {
            rwkv::deserialize_state(state, bytes.data(), bytes.size(), "fuzz");
        }
    });
    if (!ok) {
        RWKV_FUZZ_CHECK(std::memcmp(state.data.data(), before.data(), before.size() * 4) == 0);
    } else {
        RWKV_FUZZ_CHECK(bytes.size() == 72 + state.data.size() * 4 + 4);
        RWKV_FUZZ_CHECK(std::memcmp(state.data.data(), bytes.data() + 72, state.data.size() * 4) == 0);
        std::vector<uint8_t> again = rwkv::serialize_state(state);  // same header (the padding is not checked)
        RWKV_FUZZ_CHECK(std::memcmp(again.data(), bytes.data(), 68) == 0);
    }
    return 0;
}
