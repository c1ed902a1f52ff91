// Streaming-read bandwidth of this machine: the sum of a large buffer, read once per repetition by 1..N threads
// (each thread its own contiguous slice, first-touched by the same thread). Shared by rwkv-streaming-read and by
// rwkv-bench, which divides its decode GB/s by this figure when --peak-gbs is not given.
#pragma once

#include <cstddef>
#include <vector>

namespace rwkv_bench {

struct ReadBandwidth {
    int threads = 0;
    size_t bytes = 0;             // buffer size
    std::vector<double> samples;  // GB/s (1e9 bytes/s) of each repetition
    double median_gbs = 0;
    double best_gbs = 0;
};

// Reads a `bytes` buffer (rounded down to 64 KiB) `reps` times after one warm-up pass, with `threads` threads.
// Throws std::bad_alloc when the buffer cannot be allocated.
ReadBandwidth measure_read_bandwidth(size_t bytes, int threads, int reps);

// The same measurement run in a child process (fork), so that the buffer never counts towards this process's
// peak RSS. Returns a negative median when the child failed.
ReadBandwidth measure_read_bandwidth_isolated(size_t bytes, int threads, int reps);

}  // namespace rwkv_bench
