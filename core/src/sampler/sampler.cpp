#include "sampler/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace apr {

Sampler::Sampler(SamplerParams params, uint32_t n_vocab) : params_(params), n_vocab_(n_vocab), rng_(params.seed) {
    if (n_vocab == 0) throw std::invalid_argument("sampler: n_vocab is 0");
    if (std::isnan(params.temperature)) throw std::invalid_argument("sampler: temperature is NaN");
    if (!(params.top_p >= 0.0f && params.top_p <= 1.0f))
        throw std::invalid_argument("sampler: top_p " + std::to_string(params.top_p) + " is outside [0, 1]");
    if (!(params.min_p >= 0.0f && params.min_p <= 1.0f))
        throw std::invalid_argument("sampler: min_p " + std::to_string(params.min_p) + " is outside [0, 1]");
    if (!(params.repeat_penalty > 0.0f))
        throw std::invalid_argument("sampler: repeat_penalty " + std::to_string(params.repeat_penalty) +
                                    " must be > 0");
}

void Sampler::accept(int32_t id) {
    if (params_.repeat_last_n == 0) return;
    recent_.push_back(id);
    if (params_.repeat_last_n > 0) {
        while (recent_.size() > static_cast<size_t>(params_.repeat_last_n)) recent_.pop_front();
    }
}

void Sampler::apply_repeat_penalty(std::vector<Candidate>& candidates) const {
    if (params_.repeat_penalty == 1.0f || recent_.empty()) return;
    // candidates are still indexed by id here (one per vocabulary entry, in id order).
    std::vector<bool> seen(n_vocab_, false);
    for (int32_t id : recent_) {
        if (id >= 0 && static_cast<uint32_t>(id) < n_vocab_) seen[static_cast<size_t>(id)] = true;
    }
    for (Candidate& c : candidates) {
        if (!seen[static_cast<size_t>(c.id)]) continue;
        // llama.cpp: dividing a negative logit would make it more likely, so those are multiplied.
        c.logit = c.logit <= 0.0f ? c.logit * params_.repeat_penalty : c.logit / params_.repeat_penalty;
    }
}

double Sampler::uniform01() {
    // 53 random bits -> [0, 1): the same on every standard library, unlike the std distributions.
    return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

int32_t Sampler::sample(std::span<const float> logits) {
    if (logits.size() != n_vocab_)
        throw std::invalid_argument("sampler: got " + std::to_string(logits.size()) + " logits for a vocabulary of " +
                                    std::to_string(n_vocab_));

    std::vector<Candidate> candidates;
    candidates.reserve(n_vocab_);
    for (uint32_t i = 0; i < n_vocab_; ++i) candidates.push_back({static_cast<int32_t>(i), logits[i]});
    apply_repeat_penalty(candidates);
    std::erase_if(candidates, [](const Candidate& c) { return std::isnan(c.logit); });
    if (candidates.empty()) throw std::invalid_argument("sampler: every logit is NaN");

    // Best first; equal logits in id order, so greedy and every cut below are deterministic.
    auto better = [](const Candidate& a, const Candidate& b) {
        return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
    };

    const auto best = std::min_element(candidates.begin(), candidates.end(), better);
    if (std::isinf(best->logit) && best->logit < 0) throw std::invalid_argument("sampler: every logit is -inf");
    if (params_.temperature <= 0.0f) return best->id;

    // top-k
    size_t keep = candidates.size();
    if (params_.top_k > 0) keep = std::min(keep, static_cast<size_t>(params_.top_k));
    std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(keep), candidates.end(), better);
    candidates.resize(keep);

    // Probabilities of the current candidates at temperature 1 (as llama.cpp's top-p and min-p
    // see them: temperature is applied after these cuts).
    auto softmax = [](const std::vector<Candidate>& cs, double temperature) {
        std::vector<double> p(cs.size());
        const double max = cs.front().logit;
        double sum = 0.0;
        for (size_t i = 0; i < cs.size(); ++i) {
            // +inf logits share all the mass (inf - inf would be NaN).
            const double x = std::isinf(max) ? (cs[i].logit == max ? 1.0 : 0.0)
                                             : std::exp((cs[i].logit - max) / temperature);
            sum += p[i] = x;
        }
        for (double& x : p) x /= sum;
        return p;
    };

    // top-p: the smallest prefix whose probability reaches top_p.
    if (params_.top_p < 1.0f) {
        const std::vector<double> p = softmax(candidates, 1.0);
        double cumulative = 0.0;
        size_t n = candidates.size();
        for (size_t i = 0; i < p.size(); ++i) {
            cumulative += p[i];
            if (cumulative >= params_.top_p) {
                n = i + 1;
                break;
            }
        }
        candidates.resize(n);
    }

    // min-p: drop tokens less likely than min_p times the most likely one, i.e. whose logit is
    // below max + log(min_p).
    if (params_.min_p > 0.0f) {
        const double floor = static_cast<double>(candidates.front().logit) + std::log(static_cast<double>(params_.min_p));
        size_t n = 1;  // the best always stays
        while (n < candidates.size() && candidates[n].logit >= floor) ++n;
        candidates.resize(n);
    }

    // temperature, then the draw.
    const std::vector<double> p = softmax(candidates, params_.temperature);
    const double u = uniform01();
    double cumulative = 0.0;
    for (size_t i = 0; i < p.size(); ++i) {
        cumulative += p[i];
        if (u < cumulative) return candidates[i].id;
    }
    return candidates.back().id;  // u landed in the rounding slack above the last sum
}

}  // namespace apr
