#include "text/utf8.h"

namespace rwkv {

namespace {

// Length of the sequence a lead byte starts (Unicode Table 3-7), or 0 when the byte cannot start one:
// continuation bytes 80..BF, overlong leads C0/C1, and F5..FF (beyond U+10FFFF).
inline int sequence_length(uint8_t lead) {
    if (lead < 0x80) return 1;
    if (lead < 0xC2) return 0;
    if (lead < 0xE0) return 2;
    if (lead < 0xF0) return 3;
    if (lead < 0xF5) return 4;
    return 0;
}

// Allowed range of the byte after `lead`. The narrowed ranges exclude overlong forms (E0, F0),
// surrogates (ED) and code points above U+10FFFF (F4). Every later byte is 80..BF.
struct ByteRange {
    uint8_t lo, hi;
};
inline ByteRange second_byte_range(uint8_t lead) {
    switch (lead) {
        case 0xE0:
            return {0xA0, 0xBF};
        case 0xED:
            return {0x80, 0x9F};
        case 0xF0:
            return {0x90, 0xBF};
        case 0xF4:
            return {0x80, 0x8F};
        default:
            return {0x80, 0xBF};
    }
}

}  // namespace

size_t first_invalid_utf8(std::string_view bytes) {
    const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
    const size_t n = bytes.size();
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        const int len = sequence_length(s[i]);
        if (len == 0 || n - i < static_cast<size_t>(len)) return i;
        const ByteRange r = second_byte_range(s[i]);
        if (s[i + 1] < r.lo || s[i + 1] > r.hi) return i;
        for (int k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return i;
        i += len;
    }
    return std::string_view::npos;
}

bool is_valid_utf8(std::string_view bytes) {
    return first_invalid_utf8(bytes) == std::string_view::npos;
}

std::string to_valid_utf8(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    Utf8StreamDecoder dec;
    dec.feed(bytes, out);
    dec.flush(out);
    return out;
}

bool append_utf8(uint32_t cp, std::string& out) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        if (cp >= 0xD800 && cp <= 0xDFFF) return false;
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp <= 0x10FFFF) {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        return false;
    }
    return true;
}

// ---- Utf8StreamDecoder

void Utf8StreamDecoder::push(uint8_t byte, std::string& out) {
    if (n_pending_ > 0) {
        const ByteRange r = n_pending_ == 1 ? second_byte_range(pending_[0]) : ByteRange{0x80, 0xBF};
        if (byte >= r.lo && byte <= r.hi) {
            pending_[n_pending_++] = byte;
            if (n_pending_ == n_needed_) {
                out.append(reinterpret_cast<const char*>(pending_), n_pending_);
                n_pending_ = 0;
            }
            return;
        }
        // The pending prefix can no longer complete: one U+FFFD for it, then `byte` starts afresh.
        out += kReplacementChar;
        n_pending_ = 0;
    }
    const int len = sequence_length(byte);
    if (len == 1) {
        out += static_cast<char>(byte);
    } else if (len == 0) {
        out += kReplacementChar;
    } else {
        pending_[0] = byte;
        n_pending_ = 1;
        n_needed_ = static_cast<uint8_t>(len);
    }
}

void Utf8StreamDecoder::feed(std::string_view bytes, std::string& out) {
    const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
    const size_t n = bytes.size();
    size_t i = 0;
    while (i < n) {
        if (n_pending_ == 0) {
            // Fast path: copy the longest run of complete, valid sequences in one append.
            size_t valid = first_invalid_utf8(std::string_view(bytes.data() + i, n - i));
            if (valid == std::string_view::npos) valid = n - i;
            out.append(bytes.data() + i, valid);
            i += valid;
            if (i == n) break;
        }
        push(s[i++], out);
    }
}

std::string Utf8StreamDecoder::feed(std::string_view bytes) {
    std::string out;
    feed(bytes, out);
    return out;
}

void Utf8StreamDecoder::flush(std::string& out) {
    if (n_pending_ > 0) out += kReplacementChar;
    n_pending_ = 0;
}

std::string Utf8StreamDecoder::flush() {
    std::string out;
    flush(out);
    return out;
}

}  // namespace rwkv
