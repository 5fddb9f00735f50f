// RowThreadPool: the reference forward's own small pool of std::threads. It runs one job at a
// time: a range of independent work items (output rows, attention heads) split into chunks
// that the workers and the calling thread take in turn. The reference shares no code with any
// plugin, so it has its own pool rather than a shared one.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace apr::reference {

class RowThreadPool {
public:
    // A pool of n_threads participants in all (the caller counts as one); 0 = hardware concurrency.
    explicit RowThreadPool(unsigned n_threads);
    ~RowThreadPool();
    RowThreadPool(const RowThreadPool&) = delete;
    RowThreadPool& operator=(const RowThreadPool&) = delete;

    unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }

    // Calls body(begin, end, worker_index) over disjoint ranges covering [0, n_items), on all
    // threads, and returns when every item is done. worker_index < size() identifies the thread
    // (for per-thread scratch). The first exception thrown by body is rethrown here.
    void parallel_for(size_t n_items, const std::function<void(size_t, size_t, unsigned)>& body);

private:
    void worker_loop(unsigned worker_index);
    void run_chunks(unsigned worker_index);

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable job_ready_;
    std::condition_variable job_done_;

    // The current job (guarded by mutex_ where noted).
    const std::function<void(size_t, size_t, unsigned)>* body_ = nullptr;
    size_t n_items_ = 0;
    size_t chunk_ = 1;
    size_t next_item_ = 0;          // guarded by mutex_
    unsigned busy_workers_ = 0;     // guarded by mutex_
    unsigned long generation_ = 0;  // guarded by mutex_; bumped for each job
    bool stopping_ = false;         // guarded by mutex_
    std::exception_ptr error_;      // guarded by mutex_
};

}  // namespace apr::reference
