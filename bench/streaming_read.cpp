// rwkv-streaming-read: this machine's streaming-read bandwidth, the ceiling of batch-1 decode on a CPU.
//
//   rwkv-streaming-read [--size-mb 1024] [-t THREADS] [-r 5] [--json]
//
// Sums a >= 1 GB buffer of 64-bit words (16 lanes, AVX-512/AVX2 picked at run time) with 1 thread and with
// THREADS threads (default: all hardware threads), each thread reading its own contiguous slice, which it
// first-touched. Prints the median and best GB/s (1e9 bytes/s) of -r repetitions after a warm-up pass.
// rwkv-bench runs the same measurement (rwkv_bench/membw.cpp) for its "% peak" column.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <thread>

#include "rwkv_bench/membw.h"

int main(int argc, char** argv) {
    CLI::App app{"rwkv-streaming-read: streaming-read memory bandwidth with 1 and N threads"};
    size_t size_mb = 1024;
    int threads = int(std::max(1u, std::thread::hardware_concurrency()));
    int reps = 5;
    bool json = false;
    app.add_option("--size-mb", size_mb, "Buffer size in MiB (>= 1024 to defeat every cache)")
        ->check(CLI::Range(size_t(64), size_t(1) << 20));
    app.add_option("-t,--threads", threads, "Threads for the multi-threaded figure (default: all)")
        ->check(CLI::Range(1, 1024));
    app.add_option("-r,--repetitions", reps, "Repetitions after a warm-up")->check(CLI::Range(1, 1000));
    app.add_flag("--json", json, "Print JSON");
    CLI11_PARSE(app, argc, argv);

    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    std::vector<int> counts = {1};
    if (threads > 1) counts.push_back(threads);
    for (int t : counts) {
        rwkv_bench::ReadBandwidth r;
        try {
            r = rwkv_bench::measure_read_bandwidth(size_mb << 20, t, reps);
        } catch (const std::bad_alloc&) {
            std::fprintf(stderr, "error: cannot allocate %zu MiB\n", size_mb);
            return 1;
        }
        if (json) {
            out.push_back({{"threads", t},
                           {"buffer_bytes", r.bytes},
                           {"median_gbs", r.median_gbs},
                           {"best_gbs", r.best_gbs},
                           {"samples_gbs", r.samples}});
        } else {
            std::printf("streaming read, %zu MiB, %2d thread%s: %7.2f GB/s median, %7.2f best (%d runs)\n",
                        r.bytes >> 20, t, t == 1 ? " " : "s", r.median_gbs, r.best_gbs, reps);
        }
    }
    if (json) std::printf("%s\n", out.dump(2).c_str());
    return 0;
}
