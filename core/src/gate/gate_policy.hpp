// How a command line wants the parity gate run, and the GateFn that the registry's
// BackendSelector calls with it: skipped loudly (--skip-parity-gate), answered from the parity
// cache, or run. apr-run, apr-bench and apr-plugin-check share it, so all treat the gate alike.
#pragma once

#include <memory>
#include <optional>

#include "gate/parity_cache.hpp"
#include "gate/parity_gate.hpp"
#include "model/model.hpp"
#include "registry/backend_registry.hpp"

namespace apr {

struct GatePolicy {
    bool skip = false;            // --skip-parity-gate / APR_SKIP_PARITY_GATE=1
    bool use_cache = true;        // false with --no-parity-cache
    GateSettings settings;        // --parity-threshold, --parity-positions, --gate-timeout, -t
};

// The figures of the last gate call, for callers that report what the gate cost.
struct GateCallRecord {
    bool ran = false;             // the gate ran (not skipped, not answered by the cache)
    double seconds = 0.0;         // the whole call
    double reference_seconds = 0.0;  // of which the reference forward, when it ran in this call
};

// `gate` is created on first use and kept (its reference logits serve every later backend);
// `record`, when given, receives the figures of each call. Everything passed by reference
// must outlive the returned function.
GateFn make_gate_fn(const GatePolicy& policy, const Model& model, std::unique_ptr<ParityGate>& gate,
                    ParityCache& cache, GateCallRecord* record = nullptr);

}  // namespace apr
