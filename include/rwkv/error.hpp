// librwkv: the C++ exception type, shared by the RAII wrapper (rwkv.hpp) and the library's internals.
#pragma once

#include <stdexcept>
#include <string>

#include "rwkv/rwkv.h"

namespace rwkv {

// An error with the C API status it maps to; what() names what went wrong and where.
class Error : public std::runtime_error {
  public:
    Error(rwkv_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
    rwkv_status status() const { return status_; }

  private:
    rwkv_status status_;
};

}  // namespace rwkv
