#include "common/log.h"

#include <cstdio>
#include <mutex>

namespace rwkv {
namespace {

void default_callback(rwkv_log_level level, const char* message, void*) {
    if (level >= RWKV_LOG_WARN) std::fprintf(stderr, "librwkv: %s\n", message);
}

std::mutex g_mutex;
rwkv_log_callback g_callback = default_callback;
void* g_user_data = nullptr;

}  // namespace

void log_set(rwkv_log_callback callback, void* user_data) {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_callback = callback ? callback : default_callback;
    g_user_data = callback ? user_data : nullptr;
}

void log_message(rwkv_log_level level, const std::string& message) {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_callback(level, message.c_str(), g_user_data);
}

}  // namespace rwkv
