// Fuzzes Checkpoint::open on .safetensors files: the header length, the JSON header (via nlohmann::json),
// dtypes, shapes, data offsets, overlaps and the copy of unaligned tensors.
// Seeds: tests/fixtures/io/tensors.safetensors and files made by make_safetensors (fuzz_seeds);
// dictionary: fuzz/dict/safetensors.dict.
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"
#include "testutil/writers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static rwkv::test::MemFile file;
    file.write(rwkv::test::Bytes(data, data + size));
    rwkv::fuzz::accepts([&] {
        auto ckpt = rwkv::Checkpoint::open(file.path());
        rwkv::fuzz::check_tensors(*ckpt);
    });
    return 0;
}
