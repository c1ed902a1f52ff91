// UTF-8 validation and a streaming decoder for token-by-token output.
//
// Tokens of the RWKV World vocabulary are byte strings, and 486 of them are not valid UTF-8 on their own
// (id 3319 is b'\xf0\x9f', the first half of most emoji). Text produced token by token therefore has to be
// held back until a character is complete. Utf8StreamDecoder does that and nothing more: it passes valid
// text through unchanged and turns bytes that can never become valid into U+FFFD.
//
// Validity follows Unicode Table 3-7 (well-formed byte sequences): no overlong forms, no surrogates
// (U+D800..U+DFFF), nothing above U+10FFFF. Replacement follows the "maximal subpart" practice of
// Unicode §3.9 / WHATWG, which is also what Python's bytes.decode("utf-8", errors="replace") does: each
// maximal prefix of a valid sequence that is cut short becomes one U+FFFD, and the byte that cut it short
// is then read again as the start of a new sequence.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rwkv {

// U+FFFD REPLACEMENT CHARACTER, UTF-8 encoded.
inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

// True when `bytes` is entirely well-formed UTF-8 (an incomplete sequence at the end is not).
bool is_valid_utf8(std::string_view bytes);

// Byte offset of the first ill-formed sequence (the lead byte of an incomplete or invalid sequence),
// or std::string_view::npos when the whole string is valid. Meant for error messages.
size_t first_invalid_utf8(std::string_view bytes);

// `bytes` with every ill-formed sequence replaced by U+FFFD (maximal-subpart rule, as above).
std::string to_valid_utf8(std::string_view bytes);

// Appends the UTF-8 encoding of `code_point` to `out`. Returns false (and appends nothing) for
// surrogates and values above U+10FFFF.
bool append_utf8(uint32_t code_point, std::string& out);

// Feed bytes in pieces of any size (typically one token at a time); get back only complete, valid text.
//
//   Utf8StreamDecoder dec;
//   for (int32_t id : ids) std::cout << dec.feed(tok.token_bytes(id));
//   std::cout << dec.flush();
//
// A trailing sequence that may still complete is held back (at most 3 bytes). Bytes that can no longer
// become valid are emitted as U+FFFD as soon as that is known. flush() ends the stream: a dangling
// incomplete sequence becomes one U+FFFD, and the decoder is ready for a new stream.
// Concatenating every feed() and the final flush() equals to_valid_utf8() of all bytes fed.
// Not thread-safe; one decoder per stream.
class Utf8StreamDecoder {
  public:
    // Returns the text completed by `bytes`.
    std::string feed(std::string_view bytes);
    // Same, appending to `out` (no allocation when `out` has capacity).
    void feed(std::string_view bytes, std::string& out);

    // Ends the stream. Returns U+FFFD if an incomplete sequence was pending, else "".
    std::string flush();
    void flush(std::string& out);

    // Drops any pending bytes without emitting anything.
    void reset() { n_pending_ = 0; }

    // Number of bytes held back (0..3).
    size_t pending_size() const { return n_pending_; }

  private:
    void push(uint8_t byte, std::string& out);

    uint8_t pending_[4] = {};  // the incomplete sequence so far: lead byte + continuation bytes
    uint8_t n_pending_ = 0;    // bytes in pending_
    uint8_t n_needed_ = 0;     // total length of the sequence started by pending_[0]
};

}  // namespace rwkv
