// Library logging: messages go to the callback set with rwkv_log_set (default: WARN and ERROR to stderr).
#pragma once

#include <string>

#include "rwkv/rwkv.h"

namespace rwkv {

void log_message(rwkv_log_level level, const std::string& message);
inline void log_warn(const std::string& message) {
    log_message(RWKV_LOG_WARN, message);
}
inline void log_info(const std::string& message) {
    log_message(RWKV_LOG_INFO, message);
}
void log_set(rwkv_log_callback callback, void* user_data);

}  // namespace rwkv
