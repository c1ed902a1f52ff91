// Fuzzes the pickle interpreter (io/pickle.cpp) and the .pth reader's use of its result: the input is a
// data.pkl, wrapped in a valid torch.save archive that also holds storages "0".."3" of 2, 16, 64 and 256 bytes,
// so that mutations reach the tensor checks (storage sizes, strides, offsets, the strided copy) instead of
// breaking the zip. Seeds: the data.pkl of every .pth fixture; dictionary: fuzz/dict/pickle.dict.
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"
#include "testutil/writers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using rwkv::test::Bytes;
    static rwkv::test::MemFile file;
    static const std::vector<rwkv::test::ZipFileEntry> storages = {
        {"0", Bytes(2, 0x11)}, {"1", Bytes(16, 0x22)}, {"2", Bytes(64, 0x33)}, {"3", Bytes(256, 0x44)}};
    file.write(rwkv::test::make_pth_with_pickle(Bytes(data, data + size), storages));
    rwkv::fuzz::accepts([&] {
        auto ckpt = rwkv::Checkpoint::open(file.path());
        rwkv::fuzz::check_tensors(*ckpt);
    });
    return 0;
}
