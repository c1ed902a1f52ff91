// A fixed set of worker threads that run one parallel-for at a time. Workers sleep on a condition variable
// between jobs (no spinning when idle). The caller's thread takes part as worker 0.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rwkv {

class ThreadPool {
  public:
    explicit ThreadPool(int n_threads);  // n_threads >= 1, including the caller
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // Calls fn(begin, end) on disjoint ranges covering [0, n), one range per thread, each a multiple of `grain`
    // except the last. The split depends only on n, grain and the thread count, never on timing.
    void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  private:
    void worker(int index);
    void run_share(int index);

    int n_threads_;
    std::vector<std::thread> threads_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    uint64_t generation_ = 0;
    int pending_ = 0;
    bool stop_ = false;
    const std::function<void(int64_t, int64_t)>* job_ = nullptr;
    int64_t job_n_ = 0, job_grain_ = 1;
};

// Threads to use when the caller asks for 0 ("all cores").
int default_thread_count();

}  // namespace rwkv
