#include "gate/parity_gate.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <future>
#include <stdexcept>
#include <thread>

#include "log/log.hpp"
#include "reference/reference_forward.hpp"

namespace apr {

using contract::Rejection;
using contract::Stage;
using Clock = std::chrono::steady_clock;

namespace {

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int32_t argmax(const float* row, uint32_t n) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; ++i)
        if (row[i] > row[best]) best = i;
    return static_cast<int32_t>(best);
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

uint32_t gate_context_length(const GateSettings& settings) { return settings.positions; }

ParityGate::ParityGate(const apr_model_view& model, const GateSettings& settings) : model_(model), settings_(settings) {
    if (settings.positions < 4) throw std::invalid_argument("the parity gate needs at least 4 positions");
    if (settings.positions > model.n_ctx_train && model.n_ctx_train > 0)
        throw std::invalid_argument("--parity-positions " + std::to_string(settings.positions) +
                                    " exceeds the model's context length " + std::to_string(model.n_ctx_train));
    decode_ = std::max<uint32_t>(3, settings.positions / 4);
    prefill_ = settings.positions - decode_;
}

ParityGate::~ParityGate() = default;

const std::vector<int32_t>& ParityGate::tokens() {
    compute_reference();
    return tokens_;
}

void ParityGate::compute_reference() {
    if (!reference_logits_.empty()) return;
    const auto t0 = Clock::now();
    const uint32_t n_vocab = model_.n_vocab;
    // BOS, then tokens drawn from a fixed seed: the same sequence on every machine and run.
    tokens_.clear();
    tokens_.push_back(model_.bos_token_id >= 0 && static_cast<uint32_t>(model_.bos_token_id) < n_vocab
                          ? model_.bos_token_id : 0);
    uint64_t state = 0x61707221ull;  // "apr!"
    while (tokens_.size() < prefill_) tokens_.push_back(static_cast<int32_t>(splitmix64(state) % n_vocab));

    ReferenceForward reference(model_, settings_.positions, settings_.reference_threads);
    reference_logits_.assign(static_cast<size_t>(settings_.positions) * n_vocab, 0.0f);
    reference.step(tokens_.data(), prefill_, 0, true, reference_logits_.data());
    for (uint32_t j = 0; j < decode_; ++j) {
        const uint32_t pos = prefill_ + j;
        const int32_t next = argmax(&reference_logits_[static_cast<size_t>(pos - 1) * n_vocab], n_vocab);
        tokens_.push_back(next);
        reference.step(&next, 1, pos, false, &reference_logits_[static_cast<size_t>(pos) * n_vocab]);
    }
    reference_seconds_ = seconds_since(t0);
    log::get().debug("parity gate: reference forward over {} positions took {:.3f} s", settings_.positions,
                     reference_seconds_);
}

contract::GateSummary ParityGate::run(BackendSession& session) {
    const auto t0 = Clock::now();
    compute_reference();
    const uint32_t n_vocab = model_.n_vocab;
    const uint32_t positions = settings_.positions;

    // The candidate runs on a worker thread so that a backend that never returns can be given
    // up on. Everything the worker touches is owned by `work`, which outlives an abandoned run.
    struct Work {
        std::vector<int32_t> tokens;
        std::vector<float> logits;
        std::promise<void> done;
    };
    auto work = std::make_shared<Work>();
    work->tokens = tokens_;
    work->logits.assign(static_cast<size_t>(positions) * n_vocab, NAN);
    std::future<void> finished = work->done.get_future();
    const uint32_t prefill = prefill_;
    std::thread([work, &session, prefill, positions, n_vocab] {
        try {
            session.step(work->tokens.data(), prefill, 0, true, work->logits.data());
            for (uint32_t pos = prefill; pos < positions; ++pos)
                session.step(&work->tokens[pos], 1, pos, false, &work->logits[static_cast<size_t>(pos) * n_vocab]);
            work->done.set_value();
        } catch (...) {
            work->done.set_exception(std::current_exception());
        }
    }).detach();

    const auto budget = std::chrono::duration<double>(settings_.timeout_s);
    if (finished.wait_for(budget) != std::future_status::ready) {
        char reason[160];
        std::snprintf(reason, sizeof reason, "timed out after %.0f s (the backend did not finish the gate's %u positions)",
                      settings_.timeout_s, positions);
        throw RejectionError(Rejection{session.name(), Stage::parity, reason}, /*abandon=*/true);
    }
    try {
        finished.get();
    } catch (RejectionError& e) {
        e.rejection.reason += " (during the parity gate)";
        throw;
    }

    contract::GateSummary summary;
    summary.positions = positions;
    for (uint32_t pos = 0; pos < positions; ++pos) {
        std::span<const float> ref(&reference_logits_[static_cast<size_t>(pos) * n_vocab], n_vocab);
        std::span<const float> got(&work->logits[static_cast<size_t>(pos) * n_vocab], n_vocab);
        PositionComparison c = compare_logits(ref, got, settings_.criteria);
        if (!c.passed) {
            std::string where = "position " + std::to_string(pos) + " of " + std::to_string(positions) + " (" +
                                (pos < prefill_ ? "prefill" : "decode step " + std::to_string(pos - prefill_ + 1)) + "): ";
            throw RejectionError(Rejection{session.name(), Stage::parity, where + c.failure});
        }
        summary.min_cosine = pos == 0 ? c.cosine : std::min(summary.min_cosine, c.cosine);
        if (c.candidate_argmax == c.reference_argmax) ++summary.top1_agree;
    }
    summary.seconds = seconds_since(t0);
    return summary;
}

}  // namespace apr
