// Writing to stderr from a signal handler, where printf, iostreams and strsignal are not
// async-signal-safe: plain write(2) loops. Used by the guards that explain a fatal signal before
// the process ends (mapped_file_guard, step_crash_guard).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <unistd.h>

namespace apr::signal_safe {

inline void write_text(const char* s) {
    size_t n = std::strlen(s);
    while (n > 0) {
        const ssize_t w = ::write(STDERR_FILENO, s, n);
        if (w <= 0) return;
        s += w;
        n -= size_t(w);
    }
}

inline void write_number(uint64_t v) {
    char buf[24];
    int i = sizeof buf;
    buf[--i] = '\0';
    do {
        buf[--i] = char('0' + v % 10);
        v /= 10;
    } while (v && i > 0);
    write_text(buf + i);
}

}  // namespace apr::signal_safe
