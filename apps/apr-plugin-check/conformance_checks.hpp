// The conformance checks: every promise of sdk/include/apr/backend.h that the core relies on,
// each as one named check that loads the plugin the way the core does (PluginLibrary, the
// registry's descriptor peek, ParityGate) and says pass or fail with the reason.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "gate/parity_gate.hpp"
#include "isolated_run.hpp"

namespace apr::plugin_check {

struct CheckModel {
    std::filesystem::path path;
    std::string label;  // for the table: "llama F32 (synthetic)" or the file name
};

struct CheckContext {
    std::filesystem::path plugin;
    // The models to gate on; the first one also serves the step, rewind and error checks.
    std::vector<CheckModel> models;
    GateSettings gate;
    unsigned reference_threads = 0;
};

struct Check {
    std::string name;
    // The check that must have passed for this one to mean anything ("" for none): a plugin
    // that finds no device cannot be stepped, one that cannot open cannot be gated.
    std::string requires_check;
    std::function<CheckOutcome(const CheckContext&, const ProgressFn&)> run;
};

// Every check, in the order they run: file name, load + ABI, descriptor, probe, open/close,
// prefill, decode, logits last vs all, rewind, error reporting, then one parity gate per model.
std::vector<Check> conformance_checks(const CheckContext& context);

}  // namespace apr::plugin_check
