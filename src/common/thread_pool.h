// A fixed set of worker threads that run one parallel-for at a time. The caller's thread takes part as worker 0.
//
// Waiting: a decode step issues ~15 parallel-fors per layer a few microseconds apart, and waking a sleeping thread
// costs 10-50 µs (futex + scheduler), more than a small matmul. So a worker that finishes a job spins on the job
// counter for up to kSpinMicros before it sleeps on a condition variable, and the caller spins the same way for
// the workers to finish: a short pause loop, then yielding the core at each check (on an oversubscribed machine
// the thread being waited for may not be running). An idle pool burns at most kSpinMicros per thread, then sleeps.
#pragma once

#include <atomic>
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

    static constexpr int kSpinMicros = 200;

  private:
    void worker(int index);
    void run_share(int index);

    int n_threads_;
    std::vector<std::thread> threads_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    std::atomic<uint64_t> generation_{0};  // bumped (under mutex_) for every job
    std::atomic<int> pending_{0};          // workers still running the current job
    std::atomic<bool> stop_{false};
    const std::function<void(int64_t, int64_t)>* job_ = nullptr;
    int64_t job_n_ = 0, job_grain_ = 1;
};

// Threads to use when the caller asks for 0 ("all cores").
int default_thread_count();

}  // namespace rwkv
