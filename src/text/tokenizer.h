// The RWKV World tokenizer (rwkv_vocab_v20230424.txt): greedy longest byte match over a byte trie.
//
// Format and rules: docs/tokenizer.md and docs rwkv7.md §4. In short:
//  * each line is `<id> <python literal> <byte_len>`; ids 1..N are contiguous; id 0 (end of text) has no
//    bytes and is not in the file; a str literal is UTF-8 encoded (so '\x80' is C2 80), a b'' literal is raw;
//  * encode() works on bytes: from each position it takes the longest vocabulary entry that is a prefix of
//    the rest, emits its id and moves past it. No normalisation, no special tokens, no BOS. Invalid UTF-8
//    input is tokenized byte-wise like any other bytes (every single byte is a token);
//  * decode() concatenates token bytes; the result may be invalid UTF-8 (split characters). Use
//    Utf8StreamDecoder (text/utf8.h) to turn a token stream into text.
//
// A loaded WorldTokenizer is immutable: every const method may be called from many threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rwkv {

class WorldTokenizer {
  public:
    // Parses a vocabulary file. Throws rwkv::Error: IO_ERROR when it cannot be read, FORMAT_ERROR with
    // "<path>:<line>: <what>" for a malformed line (bad id, non-contiguous id, bad literal, unknown escape,
    // byte length mismatch, duplicate token), or "<path>: <what>" when the file as a whole is unusable
    // (empty, or some single byte has no token so that encode() could get stuck).
    static std::unique_ptr<WorldTokenizer> load(const std::string& path);

    // Token ids of `bytes` (normally UTF-8 text, but any bytes are accepted). "" gives [].
    std::vector<int32_t> encode(std::string_view bytes) const;
    // Same, appending to `out`.
    void encode(std::string_view bytes, std::vector<int32_t>& out) const;

    // Concatenated bytes of `ids`. Ids 0 (end of text) and vocab_size()..model_vocab_size()-1 (embedding
    // rows with no token) add nothing. Throws INVALID_ARGUMENT for ids < 0 or >= model_vocab_size().
    std::string decode(const int32_t* ids, size_t n) const;
    std::string decode(std::span<const int32_t> ids) const { return decode(ids.data(), ids.size()); }

    // Bytes of one token: "" for id 0 and for ids in [vocab_size(), model_vocab_size()).
    // Throws INVALID_ARGUMENT for ids outside [0, model_vocab_size()).
    std::string_view token_bytes(int32_t id) const;

    // Id of the token whose bytes are exactly `bytes`, or -1 when there is none ("" gives -1).
    int32_t token_id(std::string_view bytes) const;

    // Number of ids with a meaning: 0 plus the ids in the file (65530 for World: ids 0..65529).
    size_t vocab_size() const { return offsets_.size() - 1; }
    // Rows of the embedding of a model trained with this vocabulary: vocab_size() rounded up to a multiple
    // of 64 (65536 for World). Ids in [vocab_size(), model_vocab_size()) are valid but decode to nothing.
    size_t model_vocab_size() const { return (vocab_size() + 63) / 64 * 64; }
    // Length in bytes of the longest token (128 for World).
    size_t max_token_bytes() const { return max_token_bytes_; }

    static constexpr int32_t kEndOfText = 0;

  private:
    WorldTokenizer() = default;

    // Token bytes, packed: token `id` is bytes_[offsets_[id], offsets_[id + 1]). Id 0 is empty.
    std::string bytes_;              // (sum of token lengths) bytes
    std::vector<uint32_t> offsets_;  // (vocab_size() + 1)
    size_t max_token_bytes_ = 0;

    // Byte trie as a double array. Each trie node is a slot of units_; the child of the node in slot s along
    // byte c is in slot t = units_[s].base + c, and exists iff units_[t].check == s. One step of the walk is
    // therefore one add and one compare on one 12-byte unit, with no search among siblings. The root is
    // slot 0; load() checks that every single byte is a token, so the first step of encode() needs no check.
    // The array is padded by 256 slots so that base + c never runs past the end.
    struct Unit {
        int32_t base;   // children start here (0 for a leaf)
        int32_t check;  // slot of the parent; -1 for a free slot, -2 for the root
        int32_t id;     // token ending at this node, or -1
    };
    std::vector<Unit> units_;  // (n_slots)   n_slots ~ 1 + distinct non-empty prefixes of tokens + 256

    int32_t child(int32_t slot, uint8_t byte) const {  // slot of the child, or -1 when absent
        const int32_t t = units_[slot].base + byte;
        return units_[t].check == slot ? t : -1;
    }
    void build_trie(const std::string& path);  // throws FORMAT_ERROR on duplicate tokens
};

}  // namespace rwkv
