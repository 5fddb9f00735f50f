#include "thread_pool.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define APR_CPU_PAUSE() _mm_pause()
#else
#define APR_CPU_PAUSE() ((void)0)
#endif

namespace apr_cpu {
namespace {
// About 50-100 us of polling before a worker sleeps: long enough to bridge the gap between two
// matrix products of one token, short enough not to burn a shared CPU between requests.
constexpr int kSpinRounds = 4000;
}  // namespace

ThreadPool::ThreadPool(unsigned n_threads) {
    const unsigned n = n_threads == 0 ? 1 : n_threads;
    workers_.reserve(n - 1);
    for (unsigned t = 1; t < n; ++t) workers_.emplace_back([this, t] { worker_main(t); });
}

ThreadPool::~ThreadPool() {
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    generation_.notify_all();
    for (auto& w : workers_) w.join();
}

void ThreadPool::work(unsigned thread) {
    for (;;) {
        const int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
        if (task >= n_tasks_) return;
        fn_(ctx_, task, thread);
    }
}

void ThreadPool::run(int64_t n_tasks, TaskFn fn, void* ctx) {
    if (n_tasks <= 0) return;
    if (workers_.empty() || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; ++t) fn(ctx, t, 0);
        return;
    }
    fn_ = fn;
    ctx_ = ctx;
    n_tasks_ = n_tasks;
    next_task_.store(0, std::memory_order_relaxed);
    finished_.store(0, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    work(0);
    const uint32_t n_workers = static_cast<uint32_t>(workers_.size());
    for (int spin = 0;; ++spin) {
        const uint32_t done = finished_.load(std::memory_order_acquire);
        if (done == n_workers) break;
        if (spin < kSpinRounds) {
            APR_CPU_PAUSE();
        } else {
            finished_.wait(done, std::memory_order_acquire);
        }
    }
}

void ThreadPool::worker_main(unsigned thread) {
    uint32_t seen = 0;
    for (;;) {
        uint32_t gen = generation_.load(std::memory_order_acquire);
        for (int spin = 0; gen == seen; ++spin) {
            if (spin < kSpinRounds) {
                APR_CPU_PAUSE();
            } else {
                generation_.wait(seen, std::memory_order_acquire);
            }
            gen = generation_.load(std::memory_order_acquire);
        }
        seen = gen;
        if (stop_.load(std::memory_order_acquire)) return;
        work(thread);
        finished_.fetch_add(1, std::memory_order_acq_rel);
        finished_.notify_one();
    }
}

}  // namespace apr_cpu
