// Errors inside the library: one exception type carrying the C API status code.
// api.cpp turns it into an rwkv_status plus a thread-local message at the C boundary.
#pragma once

#include <string>

#include "rwkv/error.hpp"

namespace rwkv {

// Shorthands for the common cases. Messages say what and where ("<file>: tensor 'x': expected [C], found [3]").
[[noreturn]] inline void throw_format(const std::string& message) {
    throw Error(RWKV_STATUS_FORMAT_ERROR, message);
}
[[noreturn]] inline void throw_io(const std::string& message) {
    throw Error(RWKV_STATUS_IO_ERROR, message);
}
[[noreturn]] inline void throw_invalid(const std::string& message) {
    throw Error(RWKV_STATUS_INVALID_ARGUMENT, message);
}
[[noreturn]] inline void throw_unsupported(const std::string& message) {
    throw Error(RWKV_STATUS_UNSUPPORTED, message);
}

}  // namespace rwkv
