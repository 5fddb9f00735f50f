#include "isolation/isolated_gate.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "log/log.hpp"

namespace apr {

using contract::Rejection;
using contract::Stage;

namespace {

// Messages from child to parent: one kind byte, a 32-bit payload length, the payload.
enum class Message : char {
    stage = 'S',   // payload: one byte, the Stage now entered
    pass = 'P',    // payload: PassRecord
    reject = 'R',  // payload: one byte Stage, then the reason text
};

// Both sides are the same executable, so plain structs travel as bytes.
struct PassRecord {
    apr_device_info device;
    bool gate_ran;
    contract::GateSummary gate;
};

void write_all(int fd, const void* data, size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t n = ::write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) ::_exit(3);  // the parent is gone: nobody to report to
        p += n;
        size -= size_t(n);
    }
}

void send(int fd, Message kind, const void* payload, uint32_t size) {
    write_all(fd, &kind, 1);
    write_all(fd, &size, sizeof size);
    if (size) write_all(fd, payload, size);
}

void send_stage(int fd, Stage stage) {
    char s = char(stage);
    send(fd, Message::stage, &s, 1);
}

void send_rejection(int fd, const Rejection& r) {
    std::string payload(1, char(r.stage));
    payload += r.reason;
    send(fd, Message::reject, payload.data(), uint32_t(payload.size()));
}

// The child's whole life. Never returns.
[[noreturn]] void child_main(int fd, const PluginFile& file, const apr_model_view& model,
                             const apr_session_config& config, const IsolatedGateFn& gate) {
    // The gate may give up on a hung step and return; the stuck thread dies with this process.
    Stage stage = Stage::load;
    try {
        send_stage(fd, Stage::load);
        auto library = PluginLibrary::load(file);
        send_stage(fd, stage = Stage::probe);
        PassRecord pass{};
        pass.device = library->probe();
        send_stage(fd, stage = Stage::open);
        auto session = library->open(model, config);
        send_stage(fd, stage = Stage::parity);
        std::optional<contract::GateSummary> summary = gate ? gate(*session, pass.device) : std::nullopt;
        pass.gate_ran = summary.has_value();
        if (summary) pass.gate = *summary;
        send(fd, Message::pass, &pass, sizeof pass);
    } catch (const RejectionError& e) {
        send_rejection(fd, e.rejection);
    } catch (const std::exception& e) {
        send_rejection(fd, Rejection{file.name, stage, e.what()});
    }
    // Whatever was loaded is not unloaded and no destructor runs: the process is discarded.
    ::_exit(0);
}

std::string seconds_text(double s) { return fmt::format("{:g}", s); }

double limit_of(Stage stage, const IsolationLimits& limits) {
    switch (stage) {
        case Stage::open: return limits.open_s;
        case Stage::parity: return limits.parity_s;
        default: return limits.probe_s;
    }
}

std::string crash_text(int status) {
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char* what = ::strsignal(sig);
        return fmt::format("crashed: signal {} ({})", sig, what ? what : "unknown");
    }
    return fmt::format("exited with status {} without a verdict", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

}  // namespace

IsolationLimits isolation_limits_from_env() {
    IsolationLimits limits;
    if (const char* env = std::getenv("APR_ISOLATE_STAGE_TIMEOUT")) {
        char* end = nullptr;
        double s = std::strtod(env, &end);
        if (end != env && s > 0) limits.probe_s = limits.open_s = limits.parity_s = s;
    }
    return limits;
}

IsolatedOutcome run_isolated_gate(const PluginFile& file, const apr_model_view& model,
                                  const apr_session_config& config, const IsolatedGateFn& gate,
                                  const IsolationLimits& limits) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        return Rejection{file.name, Stage::load, std::string("isolation: pipe failed: ") + std::strerror(errno)};
    std::fflush(nullptr);  // nothing buffered may be written twice
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        return Rejection{file.name, Stage::load, std::string("isolation: fork failed: ") + std::strerror(errno)};
    }
    if (pid == 0) {
        ::close(fds[0]);
        child_main(fds[1], file, model, config, gate);
    }
    ::close(fds[1]);
    const int fd = fds[0];
    log::get().debug("{}: probe, open and gate run in child process {}", file.name, pid);

    using clock = std::chrono::steady_clock;
    Stage stage = Stage::load;
    auto deadline = clock::now() + std::chrono::duration<double>(limit_of(stage, limits));
    std::vector<char> buffer;
    std::optional<IsolatedOutcome> verdict;
    bool timed_out = false;
    while (!verdict) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        pollfd p{fd, POLLIN, 0};
        int ready = ::poll(&p, 1, int(std::min<long long>(left, 1000)));
        if (ready < 0 && errno == EINTR) continue;
        if (ready == 0) continue;
        char chunk[4096];
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // the child closed the pipe: exited or died
        buffer.insert(buffer.end(), chunk, chunk + n);
        // Take every complete message.
        while (buffer.size() >= 5) {
            uint32_t size;
            std::memcpy(&size, buffer.data() + 1, sizeof size);
            if (buffer.size() < 5 + size_t(size)) break;
            const Message kind = Message(buffer[0]);
            const char* payload = buffer.data() + 5;
            if (kind == Message::stage && size == 1) {
                stage = Stage(payload[0]);
                deadline = clock::now() + std::chrono::duration<double>(limit_of(stage, limits));
            } else if (kind == Message::pass && size == sizeof(PassRecord)) {
                PassRecord pass;
                std::memcpy(&pass, payload, sizeof pass);
                IsolatedPass out{pass.device, std::nullopt};
                if (pass.gate_ran) out.gate = pass.gate;
                verdict = out;
            } else if (kind == Message::reject && size >= 1) {
                verdict = Rejection{file.name, Stage(payload[0]), std::string(payload + 1, size - 1)};
            } else {
                verdict = Rejection{file.name, stage, "isolation: garbled report from the child process"};
            }
            buffer.erase(buffer.begin(), buffer.begin() + 5 + size);
            if (verdict) break;
        }
    }
    ::close(fd);
    if (timed_out) ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) return Rejection{file.name, stage, "timed out after " + seconds_text(limit_of(stage, limits)) + " s"};
    if (verdict) return *verdict;
    return Rejection{file.name, stage, crash_text(status)};
}

}  // namespace apr
