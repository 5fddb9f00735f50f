#include "isolated_run.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <exception>

namespace apr::plugin_check {

namespace {

// One message per line on the pipe: "progress <text>" or "result <P|F|S> <detail>"; newlines
// inside a text are sent as spaces.
void send(int fd, const std::string& kind, const std::string& text) {
    std::string line = kind + " " + text;
    for (char& c : line)
        if (c == '\n') c = ' ';
    line += '\n';
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n <= 0) return;
        p += n;
        left -= static_cast<size_t>(n);
    }
}

char verdict_code(Verdict v) { return v == Verdict::pass ? 'P' : v == Verdict::skip ? 'S' : 'F'; }

}  // namespace

CheckOutcome run_isolated(const std::function<CheckOutcome(const ProgressFn&)>& check, double timeout_s) {
    int fds[2];
    if (::pipe(fds) != 0) return {Verdict::fail, std::string("cannot create a pipe: ") + std::strerror(errno)};
    const pid_t child = ::fork();
    if (child < 0) return {Verdict::fail, std::string("cannot fork: ") + std::strerror(errno)};
    if (child == 0) {
        ::close(fds[0]);
        CheckOutcome outcome;
        try {
            outcome = check([fd = fds[1]](const std::string& doing) { send(fd, "progress", doing); });
        } catch (const std::exception& e) {
            outcome = {Verdict::fail, e.what()};
        } catch (...) {
            outcome = {Verdict::fail, "unknown exception"};
        }
        send(fds[1], std::string("result ") + verdict_code(outcome.verdict), outcome.detail);
        ::close(fds[1]);
        // No destructors, no atexit handlers: the plugin's static state may be what is broken.
        ::_exit(0);
    }
    ::close(fds[1]);

    std::string buffer, progress, result_line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    bool timed_out = false;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) {
            timed_out = true;
            break;
        }
        char chunk[4096];
        ssize_t n = ::read(fds[0], chunk, sizeof chunk);
        if (n <= 0) break;  // the child closed the pipe: it finished or died
        buffer.append(chunk, static_cast<size_t>(n));
        size_t nl;
        while ((nl = buffer.find('\n')) != std::string::npos) {
            std::string line = buffer.substr(0, nl);
            buffer.erase(0, nl + 1);
            if (line.rfind("progress ", 0) == 0) progress = line.substr(9);
            if (line.rfind("result ", 0) == 0) result_line = line.substr(7);
        }
    }
    ::close(fds[0]);
    if (timed_out) ::kill(child, SIGKILL);
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    const std::string during = progress.empty() ? "" : " (while: " + progress + ")";
    if (timed_out)
        return {Verdict::fail, "timed out after " + std::to_string(static_cast<int>(timeout_s)) +
                                   " s: the plugin did not return" + during};
    if (!result_line.empty()) {
        const char code = result_line[0];
        std::string detail = result_line.size() > 2 ? result_line.substr(2) : "";
        return {code == 'P' ? Verdict::pass : code == 'S' ? Verdict::skip : Verdict::fail, detail};
    }
    if (WIFSIGNALED(status))
        return {Verdict::fail, std::string("the process crashed: signal ") + std::to_string(WTERMSIG(status)) + " (" +
                                   strsignal(WTERMSIG(status)) + ")" + during};
    return {Verdict::fail, "the process exited (status " + std::to_string(WEXITSTATUS(status)) +
                               ") before the check finished" + during};
}

}  // namespace apr::plugin_check
