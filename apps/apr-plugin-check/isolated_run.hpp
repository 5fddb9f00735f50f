// Running one conformance check in a child process of its own (fork), so that a plugin that
// crashes, hangs or corrupts memory fails that check with the reason instead of taking the kit
// down with it. The child loads the plugin afresh, as a new apr process would.
#pragma once

#include <functional>
#include <string>

namespace apr::plugin_check {

enum class Verdict { pass, fail, skip };

struct CheckOutcome {
    Verdict verdict = Verdict::fail;
    std::string detail;  // the figures on a pass, the reason on a failure
};

// What a check running in the child can report before it finishes: the step it is about to
// take, so that a crash or a hang is reported with what the plugin was doing.
using ProgressFn = std::function<void(const std::string& doing)>;

// Runs `check` in a forked child and returns its outcome. The child is killed after
// `timeout_s`; a child that dies, exits early or times out gives a failure naming the signal or
// the timeout and the last progress it reported. Call only while this process runs no other
// threads (fork copies the calling thread alone).
CheckOutcome run_isolated(const std::function<CheckOutcome(const ProgressFn&)>& check, double timeout_s);

}  // namespace apr::plugin_check
