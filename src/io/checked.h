// Overflow-checked arithmetic for sizes and offsets read from untrusted files.
#pragma once

#include <cstdint>

namespace rwkv {

// Each returns false (leaving *out unspecified) when the exact result does not fit in T.
template <typename T>
inline bool checked_add(T a, T b, T* out) {
    return !__builtin_add_overflow(a, b, out);
}
template <typename T>
inline bool checked_mul(T a, T b, T* out) {
    return !__builtin_mul_overflow(a, b, out);
}

// True when [offset, offset + length) lies inside [0, size).
inline bool range_inside(uint64_t offset, uint64_t length, uint64_t size) {
    return offset <= size && length <= size - offset;
}

// Little-endian loads from a byte pointer (the caller has checked the bounds).
inline uint16_t load_le16(const uint8_t* p) {
    return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
inline uint32_t load_le32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
           (static_cast<uint32_t>(p[3]) << 24);
}
inline uint64_t load_le64(const uint8_t* p) {
    return static_cast<uint64_t>(load_le32(p)) | (static_cast<uint64_t>(load_le32(p + 4)) << 32);
}

}  // namespace rwkv
