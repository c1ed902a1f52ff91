#include "common/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace rwkv {

namespace {

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
}

// Waits until done() or kSpinMicros have passed; true when done() became true. The first kPauseSpins checks are a
// plain spin (a job a few microseconds away); after that each check yields the core, so that on a machine with
// more runnable threads than cores the thread being waited for gets to run instead of this one burning its slice.
template <typename Done>
bool spin_until(Done done) {
    constexpr int kPauseSpins = 512;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(ThreadPool::kSpinMicros);
    for (int i = 0;; i++) {
        if (done()) return true;
        if (i < kPauseSpins) {
            cpu_relax();
        } else {
            std::this_thread::yield();
            if (std::chrono::steady_clock::now() > deadline) return done();
        }
    }
}

}  // namespace

int default_thread_count() {
    return std::max(1u, std::thread::hardware_concurrency());
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
    for (int i = 1; i < n_threads_; i++) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_.store(true, std::memory_order_release);
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
}

void ThreadPool::run_share(int index) {
    // Split [0, n) into n_threads_ chunks of whole grains.
    int64_t grains = (job_n_ + job_grain_ - 1) / job_grain_;
    int64_t begin = grains * index / n_threads_ * job_grain_;
    int64_t end = std::min(job_n_, grains * (index + 1) / n_threads_ * job_grain_);
    if (begin < end) (*job_)(begin, end);
}

void ThreadPool::worker(int index) {
    uint64_t seen = 0;
    for (;;) {
        // The job fields are written before generation_ is bumped (release); reading generation_ (acquire)
        // makes them visible here.
        if (!spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; })) {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        }
        seen = generation_.load(std::memory_order_acquire);
        if (stop_.load(std::memory_order_acquire)) return;
        run_share(index);
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard<std::mutex> lock(mutex_);  // pairs with the caller's predicate check under the lock
            done_.notify_one();
        }
    }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    if (n_threads_ == 1 || n <= grain) {
        fn(0, n);
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        job_ = &fn;
        job_n_ = n;
        job_grain_ = grain;
        pending_.store(n_threads_ - 1, std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();  // cheap when every worker is still spinning (no waiters)
    run_share(0);
    if (!spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; })) {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    job_ = nullptr;
}

}  // namespace rwkv
