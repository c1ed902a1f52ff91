// Fuzzes the World tokenizer and the UTF-8 helpers with arbitrary bytes, checking properties rather than
// just "no crash":
//   * encode() gives ids in [1, vocab_size) and decode(encode(x)) == x for any bytes (every byte is a token);
//   * greedy longest match: no token boundary could be moved further right (checked on short inputs);
//   * the input read as int32 ids decodes to the concatenation of token_bytes, or is refused with
//     INVALID_ARGUMENT naming an id outside [0, model_vocab_size);
//   * to_valid_utf8() is valid UTF-8 and equals what Utf8StreamDecoder gives when fed token by token;
//     is_valid_utf8() agrees with first_invalid_utf8().
// The vocabulary is $RWKV_VOCAB, else ../shared/vocab/rwkv_vocab_v20230424.txt beside the checkout.
// Seeds: the tokenizer fixture texts (fuzz_seeds); dictionary: fuzz/dict/tokenizer.dict.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "fuzz_common.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

namespace {
std::unique_ptr<rwkv::WorldTokenizer> g_tok;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const char* env = std::getenv("RWKV_VOCAB");
    std::string path = env && *env ? env : RWKV_FUZZ_VOCAB;
    try {
        g_tok = rwkv::WorldTokenizer::load(path);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz_tokenizer: cannot load the vocabulary (set RWKV_VOCAB): %s\n", e.what());
        std::exit(1);
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const rwkv::WorldTokenizer& tok = *g_tok;
    std::string_view text(reinterpret_cast<const char*>(data), size);

    // Round trip.
    std::vector<int32_t> ids = tok.encode(text);
    RWKV_FUZZ_CHECK(ids.size() <= size);
    for (int32_t id : ids) RWKV_FUZZ_CHECK(id >= 1 && static_cast<size_t>(id) < tok.vocab_size());
    RWKV_FUZZ_CHECK(tok.decode(ids) == text);

    // Greedy longest match: at each token start, no longer token is a prefix of the rest.
    if (size <= 256) {
        size_t pos = 0;
        for (int32_t id : ids) {
            const size_t len = tok.token_bytes(id).size();
            const size_t max_len = std::min(tok.max_token_bytes(), size - pos);
            for (size_t l = len + 1; l <= max_len; l++) RWKV_FUZZ_CHECK(tok.token_id(text.substr(pos, l)) < 0);
            pos += len;
        }
    }

    // Arbitrary ids.
    std::vector<int32_t> raw(size / 4);
    if (!raw.empty()) std::memcpy(raw.data(), data, raw.size() * 4);
    bool in_range = true;
    std::string expected;
    for (int32_t id : raw) {
        if (id < 0 || static_cast<size_t>(id) >= tok.model_vocab_size()) {
            in_range = false;
            break;
        }
        expected += tok.token_bytes(id);
    }
    try {
        std::string got = tok.decode(raw);
        RWKV_FUZZ_CHECK(in_range && got == expected);
    } catch (const rwkv::Error& e) {
        RWKV_FUZZ_CHECK(!in_range && e.status() == RWKV_STATUS_INVALID_ARGUMENT);
    }

    // UTF-8: repair, validation and streaming agree.
    std::string valid = rwkv::to_valid_utf8(text);
    RWKV_FUZZ_CHECK(rwkv::is_valid_utf8(valid));
    RWKV_FUZZ_CHECK(rwkv::is_valid_utf8(text) == (rwkv::first_invalid_utf8(text) == std::string_view::npos));
    RWKV_FUZZ_CHECK(!rwkv::is_valid_utf8(text) || valid == text);
    rwkv::Utf8StreamDecoder dec;
    std::string streamed;
    for (int32_t id : ids) {
        dec.feed(tok.token_bytes(id), streamed);
        RWKV_FUZZ_CHECK(dec.pending_size() <= 3);
    }
    dec.flush(streamed);
    RWKV_FUZZ_CHECK(streamed == valid);
    return 0;
}
