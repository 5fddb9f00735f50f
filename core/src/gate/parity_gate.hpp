// ParityGate: the contract's gate. Before a backend serves, it runs the gate sequence — BOS
// plus deterministic tokens as one prefill, then single-token decode steps each fed the
// reference's argmax — on a fresh session, and every position's logits are compared with the
// reference forward's (gate/logit_comparison.hpp). The reference's logits are computed once per
// model and reused for every candidate. A backend that hangs is given up after the timeout.
#pragma once

#include <apr/backend.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "contract/parity_contract.hpp"
#include "gate/logit_comparison.hpp"
#include "registry/plugin_library.hpp"

namespace apr {

struct GateSettings {
    // Positions compared: a prefill of (positions - decode steps) tokens, then decode steps,
    // where decode steps = max(3, positions / 4). At least 4.
    uint32_t positions = 11;
    ParityCriteria criteria;
    double timeout_s = 120.0;  // for the candidate's whole run (--gate-timeout)
    unsigned reference_threads = 0;
};

class ParityGate {
public:
    // Throws std::invalid_argument when the settings cannot work with this model.
    ParityGate(const apr_model_view& model, const GateSettings& settings);
    ~ParityGate();

    // Runs the gate on `session` (which must be fresh or rewindable to 0). Returns the figures
    // when every position passes; throws RejectionError (stage parity, or step when the backend
    // returned an error; abandon_session when it timed out) otherwise.
    contract::GateSummary run(BackendSession& session);

    uint32_t prefill_length() const { return prefill_; }
    uint32_t decode_steps() const { return decode_; }
    // The whole sequence fed to both sides (available after the reference has run).
    const std::vector<int32_t>& tokens();
    // Seconds the reference forward took (0 until it ran).
    double reference_seconds() const { return reference_seconds_; }

private:
    void compute_reference();

    const apr_model_view& model_;
    GateSettings settings_;
    uint32_t prefill_ = 0;
    uint32_t decode_ = 0;
    std::vector<int32_t> tokens_;
    std::vector<float> reference_logits_;  // [positions x n_vocab]
    double reference_seconds_ = 0.0;
};

// The contract's rule for the session length the gate needs.
uint32_t gate_context_length(const GateSettings& settings);

}  // namespace apr
