#include "membw.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>

namespace rwkv_bench {
namespace {

// Sum of n 64-bit words with 16 independent lanes: the compiler turns the lane loop into full-width vector adds
// (integer adds need no reassociation licence). Cloned for AVX-512 and AVX2, picked at load time.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
uint64_t
sum_words(const uint64_t* __restrict p, size_t n) {
    constexpr size_t kLanes = 16;
    uint64_t acc[kLanes] = {};
    size_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (size_t l = 0; l < kLanes; l++) acc[l] += p[i + l];
    uint64_t s = 0;
    for (; i < n; i++) s += p[i];
    for (size_t l = 0; l < kLanes; l++) s += acc[l];
    return s;
}

struct Buffer {
    void* p = nullptr;
    size_t bytes = 0;
    explicit Buffer(size_t n) : bytes(n) {
        p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
        madvise(p, n, MADV_HUGEPAGE);  // fewer TLB misses, as a real weight buffer would have; advisory only
#endif
    }
    ~Buffer() {
        munmap(p, bytes);
    }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
};

}  // namespace

ReadBandwidth measure_read_bandwidth(size_t bytes, int threads, int reps) {
    threads = std::max(1, threads);
    reps = std::max(1, reps);
    constexpr size_t kAlign = size_t(64) << 10;
    bytes = std::max(kAlign * size_t(threads), bytes / kAlign * kAlign);
    Buffer buf(bytes);
    const size_t words = bytes / sizeof(uint64_t);
    auto* data = static_cast<uint64_t*>(buf.p);
    auto slice = [&](int t, size_t& begin, size_t& end) {
        const size_t per = words / size_t(threads) / 8 * 8;
        begin = per * size_t(t);
        end = t == threads - 1 ? words : begin + per;
    };

    // First touch by the thread that will read the slice; non-zero contents. The sums go to an atomic so that
    // the reads cannot be optimised away.
    std::atomic<uint64_t> sink{0};
    auto run = [&](bool fill) {
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; t++)
            pool.emplace_back([&, t] {
                size_t b, e;
                slice(t, b, e);
                if (fill)
                    for (size_t i = b; i < e; i++) data[i] = i * 0x9E3779B97F4A7C15ull;
                else
                    sink.fetch_add(sum_words(data + b, e - b), std::memory_order_relaxed);
            });
        for (auto& th : pool) th.join();
    };
    run(true);
    run(false);  // warm-up

    ReadBandwidth r;
    r.threads = threads;
    r.bytes = bytes;
    for (int i = 0; i < reps; i++) {
        auto t0 = std::chrono::steady_clock::now();
        run(false);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        r.samples.push_back(double(bytes) / s / 1e9);
    }
    std::vector<double> sorted = r.samples;
    std::sort(sorted.begin(), sorted.end());
    r.median_gbs = sorted.size() % 2 ? sorted[sorted.size() / 2]
                                     : 0.5 * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);
    r.best_gbs = sorted.back();
    return r;
}

ReadBandwidth measure_read_bandwidth_isolated(size_t bytes, int threads, int reps) {
    ReadBandwidth failed;
    failed.threads = threads;
    failed.median_gbs = failed.best_gbs = -1;
    int fds[2];
    if (pipe(fds) != 0) return failed;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return failed;
    }
    if (pid == 0) {
        close(fds[0]);
        double out[3] = {-1, -1, 0};
        try {
            ReadBandwidth r = measure_read_bandwidth(bytes, threads, reps);
            out[0] = r.median_gbs;
            out[1] = r.best_gbs;
            out[2] = double(r.bytes);
        } catch (...) {
        }
        ssize_t w = write(fds[1], out, sizeof out);
        _exit(w == ssize_t(sizeof out) ? 0 : 1);
    }
    close(fds[1]);
    double in[3] = {-1, -1, 0};
    size_t got = 0;
    while (got < sizeof in) {
        ssize_t n = read(fds[0], reinterpret_cast<char*>(in) + got, sizeof in - got);
        if (n <= 0) break;
        got += size_t(n);
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got != sizeof in) return failed;
    ReadBandwidth r;
    r.threads = threads;
    r.median_gbs = in[0];
    r.best_gbs = in[1];
    r.bytes = size_t(in[2]);
    return r;
}

}  // namespace rwkv_bench
