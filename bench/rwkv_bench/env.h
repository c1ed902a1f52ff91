// What rwkv-bench records about the machine and the build with every result.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rwkv_bench {

struct Environment {
    std::string cpu_info;                // "AMD EPYC 9654 96-Core Processor" (/proc/cpuinfo model name)
    std::vector<std::string> cpu_flags;  // the SIMD features that matter to librwkv, as /proc/cpuinfo spells them
    int cpu_threads = 0;                 // hardware threads
    std::string gpu_info;                // "NVIDIA H100 80GB HBM3" or "" (none / not used)
    std::string gpu_driver;              // "550.54.15" or ""
    double gpu_mem_gib = 0;
    std::string cuda_runtime;  // the CUDA toolkit librwkv was built with ("12.4.131"), "" without CUDA
    std::string build_type;    // CMake build type of rwkv-bench
    std::string build_commit;  // git commit of the source tree at build time ("-dirty" when modified)
    std::string librwkv_version;
    std::string system_info;  // rwkv_system_info()
    std::string compiler;
    std::string os;  // "Linux 6.8.0-45-generic x86_64"
};

// Probes /proc/cpuinfo, uname, and (when `probe_gpu`) nvidia-smi for device 0.
Environment probe_environment(bool probe_gpu);

// The GPU's memory bandwidth from its data sheet (GB/s), 0 when the name is unknown.
double gpu_spec_bandwidth_gbs(const std::string& gpu_name);

// Peak resident set size of this process so far, bytes (getrusage).
int64_t peak_rss_bytes();
// Resets that high-water mark to the current RSS (Linux: /proc/self/clear_refs), so that each model's peak is its
// own. Returns false where it cannot (the peak then covers the whole process).
bool reset_peak_rss();

// Now, ISO 8601 UTC ("2025-01-31T12:34:56Z"), as llama-bench's test_time.
std::string utc_now();

}  // namespace rwkv_bench
