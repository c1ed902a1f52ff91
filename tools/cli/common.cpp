#include "common.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace cli {

void ModelOptions::add_to(CLI::App& app) {
    app.add_option("-m,--model", model_path, "Model file (.pth or .safetensors)")->required();
    app.add_option("--backend", backend, "Backend: auto ($RWKV_BACKEND, else CUDA when a device is present), cpu, cuda")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    app.add_option("--device", device, "CUDA device ordinal")->check(CLI::Range(0, 1023));
    app.add_option("-t,--threads", threads, "CPU threads (0 = all cores)")->check(CLI::Range(0, 1024));
}

rwkv_model_params ModelOptions::params() const {
    rwkv_model_params p = rwkv_model_default_params();
    p.backend = backend == "cpu" ? RWKV_BACKEND_CPU : backend == "cuda" ? RWKV_BACKEND_CUDA : RWKV_BACKEND_AUTO;
    p.n_threads = threads;
    p.device = device;
    return p;
}

std::vector<int32_t> parse_id_list(const std::string& text) {
    std::vector<int32_t> ids;
    std::string item;
    std::stringstream ss(text);
    while (std::getline(ss, item, ',')) {
        size_t b = item.find_first_not_of(" \t\r\n"), e = item.find_last_not_of(" \t\r\n");
        if (b == std::string::npos) throw CLI::ValidationError("token list", "empty element in '" + text + "'");
        std::string s = item.substr(b, e - b + 1);
        size_t used = 0;
        long long v = 0;
        try {
            v = std::stoll(s, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != s.size() || v < 0 || v > INT32_MAX)
            throw CLI::ValidationError("token list", "'" + s + "' is not a token id (a non-negative integer)");
        ids.push_back(int32_t(v));
    }
    if (ids.empty()) throw CLI::ValidationError("token list", "no token ids given");
    return ids;
}

std::vector<int32_t> read_id_file(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error(path + ": cannot open");
    std::string text((std::istreambuf_iterator<char>(f)), {}), joined, word;
    for (char& c : text)
        if (c == '[' || c == ']' || c == ',' || c == '\n' || c == '\r' || c == '\t') c = ' ';
    std::stringstream words(text);
    while (words >> word) joined += (joined.empty() ? "" : ",") + word;
    try {
        return parse_id_list(joined);
    } catch (const CLI::ValidationError& e) {
        throw std::runtime_error(path + ": " + e.what());
    }
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
    std::string dims;
    int64_t n = 1;
    for (int64_t d : shape) {
        dims += std::to_string(d) + ",";
        n *= d;
    }
    if (shape.size() > 1) dims.pop_back();
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
    header.append(63 - (10 + header.size()) % 64, ' ');  // pad so the data starts 64-byte aligned
    header += '\n';
    std::string bytes = "\x93NUMPY";
    bytes += char(1);
    bytes += char(0);
    bytes += char(header.size() & 0xff);
    bytes += char(header.size() >> 8);
    bytes += header;
    bytes.append(reinterpret_cast<const char*>(data), size_t(n) * 4);
    std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        f.write(bytes.data(), std::streamsize(bytes.size()));
        f.flush();
        if (!f) throw std::runtime_error(path + ": cannot write");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error(path + ": cannot write (rename failed)");
}

void install_log_bridge() {
    rwkv_log_set(
        [](rwkv_log_level level, const char* message, void*) {
            switch (level) {
                case RWKV_LOG_DEBUG:
                    spdlog::debug("{}", message);
                    break;
                case RWKV_LOG_INFO:
                    spdlog::info("{}", message);
                    break;
                case RWKV_LOG_WARN:
                    spdlog::warn("{}", message);
                    break;
                case RWKV_LOG_ERROR:
                    spdlog::error("{}", message);
                    break;
            }
        },
        nullptr);
}

}  // namespace cli
