#include "testutil/testutil.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace rwkv::test {

std::string fixture(const std::string& name) {
    return std::string(RWKV_FIXTURES_DIR) + "/" + name;
}

std::string shared_dir() {
    std::string dir = RWKV_SHARED_DIR;
    return fs::is_directory(dir) ? dir : std::string();
}

namespace {
struct TempDir {
    fs::path path;
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "rwkv-test-XXXXXX").string();
        if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        path = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};
}  // namespace

std::string temp_dir() {
    static TempDir dir;
    return dir.path.string();
}

std::string temp_path(const std::string& name) {
    return temp_dir() + "/" + name;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!f) throw std::runtime_error("cannot write " + path);
}

std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read " + path);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

NpyArray read_npy(const std::string& path) {
    std::vector<uint8_t> bytes = read_file(path);
    if (bytes.size() < 10 || std::string(bytes.begin() + 1, bytes.begin() + 6) != "NUMPY")
        throw std::runtime_error(path + ": not a .npy file");
    size_t header_len = bytes[8] | (bytes[9] << 8);
    size_t data_start = 10 + header_len;
    if (bytes[6] >= 2) {
        header_len = bytes[8] | (bytes[9] << 8) | (bytes[10] << 16) | (size_t(bytes[11]) << 24);
        data_start = 12 + header_len;
    }
    std::string header(bytes.begin() + (data_start - header_len), bytes.begin() + data_start);
    if (header.find("'<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos)
        throw std::runtime_error(path + ": expected a C-order float32 array, header " + header);
    NpyArray out;
    size_t open = header.find("'shape': (") + 10, close = header.find(')', open);
    std::string dims = header.substr(open, close - open);
    int64_t numel = 1;
    for (size_t p = 0; p < dims.size();) {
        size_t q = dims.find(',', p);
        std::string d = dims.substr(p, q == std::string::npos ? std::string::npos : q - p);
        if (d.find_first_not_of(' ') != std::string::npos) {
            out.shape.push_back(std::stoll(d));
            numel *= out.shape.back();
        }
        if (q == std::string::npos) break;
        p = q + 1;
    }
    if (bytes.size() - data_start != static_cast<size_t>(numel) * 4)
        throw std::runtime_error(path + ": data size does not match the shape");
    out.data.resize(numel);
    std::memcpy(out.data.data(), bytes.data() + data_start, numel * 4);
    return out;
}

ErrorStats compare(const float* a, const float* ref, size_t n) {
    ErrorStats s;
    for (size_t i = 0; i < n; i++) {
        s.max_abs_err = std::max(s.max_abs_err, std::fabs(double(a[i]) - double(ref[i])));
        s.max_abs_ref = std::max(s.max_abs_ref, std::fabs(double(ref[i])));
    }
    return s;
}

}  // namespace rwkv::test
