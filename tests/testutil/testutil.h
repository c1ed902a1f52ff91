// Helpers shared by the tests: fixture paths, temporary files, .npy reading, error comparison.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rwkv::test {

// Path of a committed fixture under tests/fixtures.
std::string fixture(const std::string& name);
// ../shared beside the checkout, or "" when it is absent (tests that need it skip with a message).
std::string shared_dir();
// A fresh, empty directory for this test process (removed at exit).
std::string temp_dir();
std::string temp_path(const std::string& name);

void write_file(const std::string& path, const std::vector<uint8_t>& bytes);
std::vector<uint8_t> read_file(const std::string& path);

// A little-endian float32 .npy array (C order). Throws std::runtime_error when the file is not one.
struct NpyArray {
    std::vector<int64_t> shape;
    std::vector<float> data;
};
NpyArray read_npy(const std::string& path);

// Largest |a - b| and largest |b| over two equally long arrays.
struct ErrorStats {
    double max_abs_err = 0;
    double max_abs_ref = 0;
};
ErrorStats compare(const float* a, const float* ref, size_t n);

}  // namespace rwkv::test
