#include "generation/generator.hpp"

#include <chrono>
#include <cmath>

#include "isolation/step_crash_guard.hpp"
#include "log/log.hpp"

namespace apr {

using Clock = std::chrono::steady_clock;

Generator::Generator(BackendSelector& selector, ServingBackend serving, const Tokenizer& tokenizer,
                     std::function<void(const ServingBackend&)> on_backend)
    : selector_(selector), serving_(std::move(serving)), tokenizer_(tokenizer), on_backend_(std::move(on_backend)) {
    if (on_backend_) on_backend_(serving_);
}

namespace {

// A backend that returns non-finite logits has failed as surely as one that returns an error.
void require_finite(const BackendSession& session, const float* logits, uint32_t n_vocab, uint32_t pos) {
    for (uint32_t i = 0; i < n_vocab; ++i)
        if (!std::isfinite(logits[i]))
            throw RejectionError(contract::Rejection{
                session.name(), contract::Stage::step,
                "non-finite logit (" + std::string(std::isnan(logits[i]) ? "NaN" : "Inf") + ") at vocab index " +
                    std::to_string(i) + ", position " + std::to_string(pos)});
}

}  // namespace

void Generator::step_with_failover(const std::vector<int32_t>& history, const int32_t* tokens, uint32_t n,
                                   uint32_t pos, float* logits, GenerationStats& stats) {
    const uint32_t n_vocab = serving_.session->model().n_vocab;
    bool replay = false;  // after a failover, the new backend is fed everything up to here at once
    for (;;) {
        try {
            // A crash inside the plugin's step cannot be failed over from: the guard names it.
            const StepCrashGuard crash_guard(serving_.session->name(), pos);
            if (!replay) {
                serving_.session->step(tokens, n, pos, false, logits);
            } else {
                std::vector<int32_t> all(history.begin(), history.begin() + pos);
                all.insert(all.end(), tokens, tokens + n);
                log::get().debug("failover: replaying {} tokens on {}", all.size(), serving_.session->name());
                serving_.session->step(all.data(), static_cast<uint32_t>(all.size()), 0, false, logits);
            }
            require_finite(*serving_.session, logits, n_vocab, pos + n - 1);
            return;
        } catch (const RejectionError& e) {
            selector_.reject_serving(e.rejection);
            serving_.session.reset();
            auto next = selector_.next();
            if (!next) throw;
            serving_ = std::move(*next);
            ++stats.failovers;
            if (on_backend_) on_backend_(serving_);
            replay = true;
        }
    }
}

GenerationStats Generator::run(const std::vector<int32_t>& prompt, uint32_t n_predict, Sampler& sampler,
                               const std::function<void(std::string_view)>& emit) {
    GenerationStats stats;
    stats.prompt_tokens = static_cast<uint32_t>(prompt.size());
    if (prompt.empty() || n_predict == 0) return stats;
    const uint32_t n_vocab = serving_.session->model().n_vocab;
    std::vector<float> logits(n_vocab);
    std::vector<int32_t> history = prompt;
    for (int32_t t : prompt) sampler.accept(t);

    auto t0 = Clock::now();
    step_with_failover(history, prompt.data(), static_cast<uint32_t>(prompt.size()), 0, logits.data(), stats);
    stats.prompt_seconds = std::chrono::duration<double>(Clock::now() - t0).count();

    StreamingDetokenizer detok(tokenizer_);
    auto t1 = Clock::now();
    for (uint32_t i = 0; i < n_predict; ++i) {
        int32_t next = sampler.sample(logits);
        sampler.accept(next);
        if (tokenizer_.is_end_of_generation(next)) {
            stats.stopped_at_eog = true;
            break;
        }
        history.push_back(next);
        ++stats.generated_tokens;
        std::string piece = detok.push(next);
        if (!piece.empty()) emit(piece);
        if (i + 1 == n_predict) break;  // the last token needs no logits after it
        const uint32_t pos = static_cast<uint32_t>(history.size() - 1);
        step_with_failover(history, &history[pos], 1, pos, logits.data(), stats);
    }
    std::string rest = detok.finish();
    if (!rest.empty()) emit(rest);
    stats.generation_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
    return stats;
}

}  // namespace apr
