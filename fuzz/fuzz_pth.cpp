// Fuzzes Checkpoint::open on whole files: format detection, the zip reader (central directory, ZIP64, local
// headers, prefixes), the pickle interpreter and the storage / stride checks of the .pth reader.
// Seeds: tests/fixtures/io/*.pth and files made by the test writers (fuzz_seeds); dictionary: fuzz/dict/pth.dict.
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"
#include "testutil/writers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static rwkv::test::MemFile file;  // memfd: rewritten every run, never on disk
    file.write(rwkv::test::Bytes(data, data + size));
    rwkv::fuzz::accepts([&] {
        auto ckpt = rwkv::Checkpoint::open(file.path());
        rwkv::fuzz::check_tensors(*ckpt);
    });
    return 0;
}
