// Shared pieces of the rwkv-cli subcommands: model options, token lists, .npy output, error reporting.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "rwkv/rwkv.hpp"

namespace cli {

// Options every command that runs a model takes.
struct ModelOptions {
    std::string model_path;
    std::string backend = "auto";
    int device = 0;  // CUDA device ordinal
    int threads = 0;
    void add_to(CLI::App& app);
    rwkv_model_params params() const;
};

// "1,2,3" (spaces allowed) -> ids. Throws CLI::ValidationError naming the bad element.
std::vector<int32_t> parse_id_list(const std::string& text);
// A file with ids separated by commas, spaces or newlines, or a JSON array.
std::vector<int32_t> read_id_file(const std::string& path);

// Writes a float32 C-order .npy array, atomically.
void write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* data);

// Routes librwkv's log messages to spdlog.
void install_log_bridge();

}  // namespace cli
