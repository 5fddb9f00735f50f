#include "bench/host_bandwidth.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <memory>
#include <thread>
#include <vector>

namespace apr::bench {

namespace {

// The size of the highest cache level that cpu0 sees, from sysfs ("32768K"); 0 if unreadable.
// Preferred to sysconf, which on some virtual machines reports the whole host's L3.
size_t sysfs_last_level_cache_bytes() {
    namespace fs = std::filesystem;
    const fs::path root = "/sys/devices/system/cpu/cpu0/cache";
    std::error_code ec;
    int best_level = -1;
    size_t best = 0;
    for (const auto& entry : fs::directory_iterator(root, ec)) {
        if (entry.path().filename().string().rfind("index", 0) != 0) continue;
        int level = -1;
        std::string size_text, type;
        std::ifstream(entry.path() / "level") >> level;
        std::ifstream(entry.path() / "size") >> size_text;
        std::ifstream(entry.path() / "type") >> type;
        if (type == "Instruction" || size_text.empty()) continue;
        size_t value = std::strtoull(size_text.c_str(), nullptr, 10);
        switch (size_text.back()) {
            case 'K': value <<= 10; break;
            case 'M': value <<= 20; break;
            case 'G': value <<= 30; break;
            default: break;
        }
        if (level > best_level) best_level = level, best = value;
    }
    return best;
}

}  // namespace

size_t last_level_cache_bytes() {
    if (size_t sysfs = sysfs_last_level_cache_bytes()) return sysfs;
    long llc = 0;
#ifdef _SC_LEVEL3_CACHE_SIZE
    llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
#ifdef _SC_LEVEL2_CACHE_SIZE
    if (llc <= 0) llc = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    return llc > 0 ? static_cast<size_t>(llc) : size_t{32} << 20;
}

HostBandwidth measure_host_bandwidth(unsigned threads, unsigned passes) {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    passes = std::max(1u, passes);
    const size_t bytes = std::clamp(last_level_cache_bytes() * 8, size_t{256} << 20, size_t{1} << 30);
    std::unique_ptr<char[]> src(new char[bytes]), dst(new char[bytes]);
    // Touch every page first so the passes measure copying, not page faults.
    std::memset(src.get(), 1, bytes);
    std::memset(dst.get(), 0, bytes);

    const size_t slice = (bytes / threads) & ~size_t{4095};
    auto copy_slice = [&](unsigned t) {
        const size_t begin = slice * t;
        const size_t end = t + 1 == threads ? bytes : begin + slice;
        std::memcpy(dst.get() + begin, src.get() + begin, end - begin);
    };
    double best = 0.0;
    for (unsigned p = 0; p < passes; ++p) {
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<std::thread> workers;
        for (unsigned t = 1; t < threads; ++t) workers.emplace_back(copy_slice, t);
        copy_slice(0);
        for (auto& w : workers) w.join();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (s > 0) best = std::max(best, static_cast<double>(bytes) / s);
    }
    HostBandwidth bw;
    bw.read_bytes_per_s = best;
    bw.read_write_bytes_per_s = 2 * best;
    bw.buffer_bytes = bytes;
    bw.threads = threads;
    return bw;
}

}  // namespace apr::bench
