// A persistent pool of worker threads for the forward pass. One parallel_for per matrix
// product (hundreds per token), so workers stay alive between calls, spin briefly on the next
// job before sleeping, and tasks are handed out through one atomic counter (threads that got
// a slice of a busy, shared CPU late still finish together).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace apr_cpu {

class ThreadPool {
public:
    // n_threads counts the calling thread: n_threads - 1 workers are started.
    explicit ThreadPool(unsigned n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }

    // Calls fn(task, thread) for every task in [0, n_tasks) on all threads (the caller
    // included; thread in [0, size())), and returns when every task is done. fn must not throw.
    template <class F>
    void parallel_for(int64_t n_tasks, F&& fn) {
        using Fn = std::remove_reference_t<F>;
        run(n_tasks, [](void* ctx, int64_t task, unsigned thread) { (*static_cast<Fn*>(ctx))(task, thread); },
            const_cast<void*>(static_cast<const void*>(&fn)));
    }

private:
    using TaskFn = void (*)(void* ctx, int64_t task, unsigned thread);
    void run(int64_t n_tasks, TaskFn fn, void* ctx);
    void work(unsigned thread);
    void worker_main(unsigned thread);

    std::vector<std::thread> workers_;
    // The current job, published by bumping generation_.
    TaskFn fn_ = nullptr;
    void* ctx_ = nullptr;
    int64_t n_tasks_ = 0;
    std::atomic<int64_t> next_task_{0};
    std::atomic<uint32_t> generation_{0};
    std::atomic<uint32_t> finished_{0};  // workers done with the current generation
    std::atomic<bool> stop_{false};
};

}  // namespace apr_cpu
