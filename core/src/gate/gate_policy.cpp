#include "gate/gate_policy.hpp"

#include <chrono>

#include "log/log.hpp"

namespace apr {

GateFn make_gate_fn(const GatePolicy& policy, const Model& model, std::unique_ptr<ParityGate>& gate,
                    ParityCache& cache, GateCallRecord* record) {
    return [&policy, &model, &gate, &cache, record](BackendSession& session,
                                                    const apr_device_info& device) -> std::optional<contract::GateSummary> {
        if (record) *record = GateCallRecord{};
        if (policy.skip) {
            log::get().info(contract::gate_skipped_line(session.name()));
            return std::nullopt;
        }
        const ParityCacheKey key =
            make_parity_cache_key(session.library().path(), device, model.identity(), policy.settings);
        if (policy.use_cache)
            if (auto cached = cache.lookup(key)) return cached;
        if (!gate) gate = std::make_unique<ParityGate>(model.view(), policy.settings);
        // The reference forward runs once per gate object: whatever it took in this call is
        // the growth of reference_seconds().
        const double reference_before = gate->reference_seconds();
        const auto t0 = std::chrono::steady_clock::now();
        contract::GateSummary summary = gate->run(session);
        if (record) {
            record->ran = true;
            record->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            record->reference_seconds = gate->reference_seconds() - reference_before;
        }
        if (policy.use_cache) cache.store(key, summary);
        return summary;
    };
}

}  // namespace apr
