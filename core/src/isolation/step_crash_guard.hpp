// A plugin that crashes inside a step while it serves (after the gate passed) takes apr's own
// process with it: its memory is ours, so there is nothing left to fail over from. What apr can
// still do is say which backend died and where, instead of leaving the user with a bare
// "Segmentation fault" under half a sentence of output. While a StepCrashGuard is alive, a
// fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) on any thread first prints
//   "apr: backend <name> crashed during generation: signal <n> (<what>) in its step at
//    position <pos>; no fallback is possible after a crash inside apr's process: run again with
//    --backend to choose another backend"
// and then gets the handler that was there before (the default action: the process dies of the
// signal, exit status 128 + n, as before; a sanitizer's report under sanitizers; the mapped-file
// guard's message for a SIGBUS on a truncated model). Outside a guard nothing changes.
//
// Only the generation loop arms it: probe, open and the gate can run in a child process
// (--isolate-gate), where a crash is a tagged rejection and the next backend serves.
#pragma once

#include <cstdint>
#include <string_view>

namespace apr {

class StepCrashGuard {
public:
    // Arms the guard for one step call of `backend` at `position`. Guards do not nest.
    StepCrashGuard(std::string_view backend, uint32_t position);
    ~StepCrashGuard();
    StepCrashGuard(const StepCrashGuard&) = delete;
    StepCrashGuard& operator=(const StepCrashGuard&) = delete;
};

}  // namespace apr
