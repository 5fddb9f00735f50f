#include "isolation/mapped_file_guard.hpp"

#include <atomic>
#include <csignal>
#include <cstring>

#include <signal.h>
#include <unistd.h>

#include "isolation/signal_safe_text.hpp"
#include "log/log.hpp"

namespace apr {

namespace {

// Read by the signal handler: fixed storage, published with an atomic count.
struct GuardedMapping {
    const uint8_t* base;
    size_t size;
    char path[512];
};
constexpr int kMaxMappings = 16;
GuardedMapping g_mappings[kMaxMappings];
std::atomic<int> g_count{0};

using signal_safe::write_number;
using signal_safe::write_text;

void on_sigbus(int sig, siginfo_t* info, void*) {
    const auto* addr = static_cast<const uint8_t*>(info->si_addr);
    const int n = g_count.load(std::memory_order_acquire);
    for (int i = 0; i < n; ++i) {
        const GuardedMapping& m = g_mappings[i];
        if (addr >= m.base && addr < m.base + m.size) {
            write_text("apr: model file ");
            write_text(m.path);
            write_text(" shrank while in use (bus error at byte ");
            write_number(uint64_t(addr - m.base));
            write_text("); it must not be modified while apr runs\n");
            ::_exit(1);
        }
    }
    // Not ours: die of it as if no handler were installed.
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

}  // namespace

void guard_mapped_file(std::span<const uint8_t> bytes, const std::string& path) {
    static std::atomic<bool> installed{false};
    const int i = g_count.load();
    if (i >= kMaxMappings) {
        log::get().debug("{}: not guarded against shrinking (more than {} mapped files)", path, kMaxMappings);
        return;
    }
    GuardedMapping& m = g_mappings[i];
    m.base = bytes.data();
    m.size = bytes.size();
    std::strncpy(m.path, path.c_str(), sizeof m.path - 1);
    m.path[sizeof m.path - 1] = '\0';
    g_count.store(i + 1, std::memory_order_release);
    if (!installed.exchange(true)) {
        struct sigaction sa {};
        sa.sa_sigaction = on_sigbus;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGBUS, &sa, nullptr);
    }
}

}  // namespace apr
