#include "isolation/step_crash_guard.hpp"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>

#include <signal.h>
#include <unistd.h>

#include "isolation/signal_safe_text.hpp"

namespace apr {

namespace {

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
constexpr int kMaxSignal = 32;

// Read by the handler: fixed storage, published by the armed flag (release / acquire).
char g_backend[128];
std::atomic<uint32_t> g_position{0};
std::atomic<bool> g_armed{false};
struct sigaction g_previous[kMaxSignal];

using signal_safe::write_number;
using signal_safe::write_text;

// Not strsignal: it is not async-signal-safe.
const char* signal_text(int sig) {
    switch (sig) {
        case SIGSEGV: return "Segmentation fault";
        case SIGBUS: return "Bus error";
        case SIGILL: return "Illegal instruction";
        case SIGFPE: return "Floating point exception";
        case SIGABRT: return "Aborted";
        default: return "fatal signal";
    }
}

void on_fatal_signal(int sig, siginfo_t* info, void* context) {
    // Only the first thread to get here speaks; a second crashing thread goes straight on.
    if (g_armed.exchange(false, std::memory_order_acq_rel)) {
        write_text("apr: backend ");
        write_text(g_backend);
        write_text(" crashed during generation: signal ");
        write_number(uint64_t(sig));
        write_text(" (");
        write_text(signal_text(sig));
        write_text(") in its step at position ");
        write_number(g_position.load(std::memory_order_relaxed));
        write_text("; no fallback is possible after a crash inside apr's process: run again with --backend to "
                   "choose another backend\n");
    }
    // Hand the signal to whoever had it before.
    const struct sigaction& prev = g_previous[sig];
    if (prev.sa_flags & SA_SIGINFO) {
        if (prev.sa_sigaction) {
            prev.sa_sigaction(sig, info, context);
            return;
        }
    } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
        prev.sa_handler(sig);
        return;
    }
    // Default action: die of the signal itself, so the exit status says what happened.
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

void install_once() {
    static std::atomic<bool> installed{false};
    if (installed.exchange(true)) return;
    for (int sig : kSignals) {
        struct sigaction sa {};
        sa.sa_sigaction = on_fatal_signal;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        ::sigaction(sig, &sa, &g_previous[sig]);
    }
}

}  // namespace

StepCrashGuard::StepCrashGuard(std::string_view backend, uint32_t position) {
    install_once();
    const size_t n = std::min(backend.size(), sizeof g_backend - 1);
    std::memcpy(g_backend, backend.data(), n);
    g_backend[n] = '\0';
    g_position.store(position, std::memory_order_relaxed);
    g_armed.store(true, std::memory_order_release);
}

StepCrashGuard::~StepCrashGuard() { g_armed.store(false, std::memory_order_release); }

}  // namespace apr
