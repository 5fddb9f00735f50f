// Running a candidate's probe, open and parity gate in a child process (--isolate-gate,
// APR_ISOLATE_GATE=1), so that a plugin that crashes (SIGSEGV, abort) or hangs there costs a
// tagged rejection instead of apr-run itself.
//
// The parent forks before the plugin is loaded anywhere. The child loads the plugin, probes,
// opens a session, runs the gate, sends the outcome (or the rejection) back through a pipe and
// exits with _exit, without running destructors or atexit handlers of the parent's state. It
// announces each stage before entering it, so that when it dies or stops answering the parent
// knows which stage to blame. A child that is still silent after the stage's time limit is
// killed (SIGKILL). When the child passes, the parent loads the plugin itself and opens the
// session it serves with, trusting the child's gate figures: the plugin and the model are the
// same files, so the gate's verdict carries over. What isolation cannot cover: a crash during
// generation (step after the gate) still happens in apr-run's own process.
#pragma once

#include <apr/backend.h>

#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "contract/parity_contract.hpp"
#include "registry/plugin_discovery.hpp"
#include "registry/plugin_library.hpp"

namespace apr {

// What the child found out. `gate` is nullopt when the gate was skipped by an override.
struct IsolatedPass {
    apr_device_info device{};
    std::optional<contract::GateSummary> gate;
};

using IsolatedOutcome = std::variant<IsolatedPass, contract::Rejection>;

// The gate as the selector runs it (GateFn in backend_registry.hpp, repeated here so that this
// unit does not depend on the registry's header).
using IsolatedGateFn =
    std::function<std::optional<contract::GateSummary>(BackendSession& session, const apr_device_info& device)>;

struct IsolationLimits {
    double probe_s = 60;    // probe: device discovery
    double open_s = 600;    // open: weights uploaded to the device
    double parity_s = 180;  // the whole gate (longer than the gate's own timeout, which speaks first)
};

// The limits, with APR_ISOLATE_STAGE_TIMEOUT (seconds, for every stage) applied when set.
IsolationLimits isolation_limits_from_env();

// Forks, runs load/probe/open/gate in the child and waits for its verdict. A crash becomes
// Rejection{stage, "crashed: signal 11 (Segmentation fault)"}, a hang
// Rejection{stage, "timed out after N s"}, anything the child rejected itself comes back as is.
IsolatedOutcome run_isolated_gate(const PluginFile& file, const apr_model_view& model,
                                  const apr_session_config& config, const IsolatedGateFn& gate,
                                  const IsolationLimits& limits);

}  // namespace apr
