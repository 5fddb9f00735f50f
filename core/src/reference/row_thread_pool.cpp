#include "reference/row_thread_pool.hpp"

#include <algorithm>
#include <utility>

namespace apr::reference {

RowThreadPool::RowThreadPool(unsigned n_threads) {
    if (n_threads == 0) n_threads = std::max(1u, std::thread::hardware_concurrency());
    workers_.reserve(n_threads - 1);
    for (unsigned i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

RowThreadPool::~RowThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    job_ready_.notify_all();
    for (auto& worker : workers_) worker.join();
}

void RowThreadPool::parallel_for(size_t n_items, const std::function<void(size_t, size_t, unsigned)>& body) {
    if (n_items == 0) return;
    if (workers_.empty() || n_items == 1) {
        body(0, n_items, 0);
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        body_ = &body;
        n_items_ = n_items;
        // A few chunks per thread, so that uneven rows (or a busy core) balance out.
        chunk_ = std::max<size_t>(1, n_items / (size_t{size()} * 4));
        next_item_ = 0;
        busy_workers_ = static_cast<unsigned>(workers_.size());
        error_ = nullptr;
        ++generation_;
    }
    job_ready_.notify_all();
    run_chunks(0);
    std::unique_lock<std::mutex> lock(mutex_);
    job_done_.wait(lock, [this] { return busy_workers_ == 0; });
    body_ = nullptr;
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void RowThreadPool::run_chunks(unsigned worker_index) {
    for (;;) {
        size_t begin;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (next_item_ >= n_items_ || error_) return;
            begin = next_item_;
            next_item_ = std::min(n_items_, next_item_ + chunk_);
        }
        const size_t end = std::min(n_items_, begin + chunk_);
        try {
            (*body_)(begin, end, worker_index);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error_) error_ = std::current_exception();
            return;
        }
    }
}

void RowThreadPool::worker_loop(unsigned worker_index) {
    unsigned long seen_generation = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mutex_);
            job_ready_.wait(lock, [&] { return stopping_ || generation_ != seen_generation; });
            if (stopping_) return;
            seen_generation = generation_;
        }
        run_chunks(worker_index);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            --busy_workers_;
        }
        job_done_.notify_one();
    }
}

}  // namespace apr::reference
