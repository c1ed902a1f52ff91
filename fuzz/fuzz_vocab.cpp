// Fuzzes WorldTokenizer::load on arbitrary vocabulary files (line syntax, Python literals and escapes, ids, byte
// lengths, duplicates, the double-array trie build). An accepted vocabulary must then behave: every token
// maps back to its id, and encode/decode round-trips arbitrary bytes.
// Seeds: slices of rwkv_vocab_v20230424.txt (fuzz_seeds); dictionary: fuzz/dict/vocab.dict.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.h"
#include "testutil/writers.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static rwkv::test::MemFile file;
    file.write(rwkv::test::Bytes(data, data + size));
    std::unique_ptr<rwkv::WorldTokenizer> tok;
    if (!rwkv::fuzz::accepts([&] { tok = rwkv::WorldTokenizer::load(file.path()); })) return 0;

    const size_t n = tok->vocab_size();
    RWKV_FUZZ_CHECK(n >= 257);  // id 0 plus every single byte
    for (size_t id = 1; id < n; id++) {
        std::string_view b = tok->token_bytes(static_cast<int32_t>(id));
        RWKV_FUZZ_CHECK(!b.empty() && b.size() <= tok->max_token_bytes());
        RWKV_FUZZ_CHECK(tok->token_id(b) == static_cast<int32_t>(id));
    }
    // The vocabulary text itself is a convenient arbitrary input.
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::vector<int32_t> ids = tok->encode(text);
    for (int32_t id : ids) RWKV_FUZZ_CHECK(id >= 1 && static_cast<size_t>(id) < n);
    RWKV_FUZZ_CHECK(tok->decode(ids) == text);
    return 0;
}
