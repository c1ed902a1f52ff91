#include "env.h"

#include <sys/resource.h>
#include <sys/utsname.h>

#include <array>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "rwkv/rwkv.h"
#include "rwkv_bench_commit.h"  // generated at build time: RWKV_BENCH_COMMIT

#ifndef RWKV_BENCH_BUILD_TYPE
#define RWKV_BENCH_BUILD_TYPE "unknown"
#endif
#ifndef RWKV_BENCH_CUDA_RUNTIME
#define RWKV_BENCH_CUDA_RUNTIME ""
#endif

namespace rwkv_bench {
namespace {

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// stdout of a command, "" when it cannot be run. Only fixed command lines are passed here.
std::string command_output(const char* cmd) {
    std::string out;
    FILE* p = popen(cmd, "r");
    if (!p) return out;
    std::array<char, 512> buf{};
    while (fgets(buf.data(), int(buf.size()), p)) out += buf.data();
    if (pclose(p) != 0) return "";
    return out;
}

}  // namespace

Environment probe_environment(bool probe_gpu) {
    Environment env;
    env.cpu_threads = int(std::thread::hardware_concurrency());
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    std::set<std::string> flags;
    while (std::getline(cpuinfo, line)) {
        size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
        if (env.cpu_info.empty() && (key == "model name" || key == "Model" || key == "CPU part")) env.cpu_info = value;
        if (flags.empty() && (key == "flags" || key == "Features")) {
            std::istringstream words(value);
            std::string w;
            while (words >> w) flags.insert(w);
        }
    }
    // The features librwkv's CPU kernels (or a faster future version) can use, in a fixed order.
    static const char* kInteresting[] = {"sse4_2",      "avx",         "avx2",     "fma",      "f16c",
                                         "avx512f",     "avx512bw",    "avx512vl", "avx512dq", "avx512_bf16",
                                         "avx512_fp16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_tile",
                                         "asimd",       "asimdhp",     "bf16",     "sve",      "sve2"};
    for (const char* f : kInteresting)
        if (flags.count(f)) env.cpu_flags.push_back(f);
    if (env.cpu_info.empty()) env.cpu_info = "unknown CPU";

    if (probe_gpu) {
        std::string smi = command_output(
            "nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader,nounits -i 0 2>/dev/null");
        std::istringstream fields(smi);
        std::string name, driver, mem;
        if (std::getline(fields, name, ',') && std::getline(fields, driver, ',') && std::getline(fields, mem)) {
            env.gpu_info = trim(name);
            env.gpu_driver = trim(driver);
            try {
                env.gpu_mem_gib = std::stod(trim(mem)) / 1024.0;  // MiB
            } catch (const std::exception&) {
            }
        }
    }
    env.cuda_runtime = RWKV_BENCH_CUDA_RUNTIME;
    env.build_type = RWKV_BENCH_BUILD_TYPE;
    if (env.build_type.empty()) env.build_type = "unknown";
    env.build_commit = RWKV_BENCH_COMMIT;
    env.librwkv_version = rwkv_version();
    env.system_info = rwkv_system_info();
#if defined(__clang__)
    env.compiler = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    env.compiler = std::string("gcc ") + __VERSION__;
#else
    env.compiler = "unknown";
#endif
    struct utsname u;
    if (uname(&u) == 0) env.os = std::string(u.sysname) + " " + u.release + " " + u.machine;
    return env;
}

double gpu_spec_bandwidth_gbs(const std::string& name) {
    // Data-sheet memory bandwidth, most specific names first ("GH200" before "H200", "A100" before "A10").
    static const std::pair<const char*, double> kTable[] = {
        {"GH200", 4000},       {"H200", 4800},
        {"H100 NVL", 3900},    {"H100 PCIe", 2000},
        {"H100", 3350},        {"H800", 3350},
        {"H20", 4000},         {"B200", 8000},
        {"B100", 8000},        {"A100-SXM4-80GB", 2039},
        {"A100 80GB", 1935},   {"A100", 1555},
        {"A800", 2039},        {"A10G", 600},
        {"A10", 600},          {"L40S", 864},
        {"L40", 864},          {"L4", 300},
        {"V100", 900},         {"RTX 5090", 1792},
        {"RTX 5080", 960},     {"RTX PRO 6000", 1792},
        {"RTX 6000 Ada", 960}, {"RTX 4090", 1008},
        {"RTX 4080", 717},     {"RTX 3090 Ti", 1008},
        {"RTX 3090", 936},     {"RTX 3080", 760},
        {"T4", 320},
    };
    for (const auto& [key, gbs] : kTable)
        if (name.find(key) != std::string::npos) return gbs;
    return 0;
}

int64_t peak_rss_bytes() {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return int64_t(ru.ru_maxrss) * 1024;  // kilobytes on Linux
}

bool reset_peak_rss() {
    std::ofstream f("/proc/self/clear_refs");
    f << "5";  // "reset the peak resident set size", Linux >= 4.0
    f.flush();
    return bool(f);
}

std::string utc_now() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace rwkv_bench
