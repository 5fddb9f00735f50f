#include "conformance_checks.hpp"

#include <cmath>
#include <cstdio>
#include <memory>
#include <span>

#include "contract/parity_contract.hpp"
#include "gate/logit_comparison.hpp"
#include "model/model.hpp"
#include "reference/reference_forward.hpp"
#include "registry/descriptor_peek.hpp"
#include "registry/plugin_discovery.hpp"
#include "registry/plugin_library.hpp"

namespace apr::plugin_check {

namespace {

constexpr uint32_t kSessionContext = 32;  // positions every step check's session holds
constexpr uint32_t kPrefill = 8;          // tokens of the prefill the step checks start with

CheckOutcome pass(std::string detail) { return {Verdict::pass, std::move(detail)}; }
CheckOutcome fail(std::string detail) { return {Verdict::fail, std::move(detail)}; }

std::string rejection_text(const RejectionError& e) {
    return std::string(contract::stage_name(e.rejection.stage)) + ": " + e.rejection.reason;
}

std::string fixed(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

// The file as the core's discovery would name it: the <name> of libapr_backend_<name>.so, or
// the file's stem when it is not named that way (the ABI check then fails on the name).
PluginFile plugin_file(const CheckContext& c) {
    auto name = backend_name_from_filename(c.plugin.filename().string());
    return PluginFile{c.plugin, name.value_or(c.plugin.stem().string()), "command line", false, {}};
}

std::shared_ptr<PluginLibrary> load(const CheckContext& c, const ProgressFn& progress) {
    progress("loading " + c.plugin.string());
    return PluginLibrary::load(plugin_file(c));
}

// Deterministic tokens that are valid ids of the model: BOS, then a spread of ids.
std::vector<int32_t> test_tokens(const apr_model_view& m, uint32_t n, uint32_t salt) {
    std::vector<int32_t> t;
    t.push_back(m.bos_token_id >= 0 && static_cast<uint32_t>(m.bos_token_id) < m.n_vocab ? m.bos_token_id : 0);
    for (uint32_t i = 1; i < n; ++i) t.push_back(static_cast<int32_t>((i * 7919u + salt * 104729u + 13u) % m.n_vocab));
    return t;
}

int32_t argmax(std::span<const float> row) {
    size_t best = 0;
    for (size_t i = 1; i < row.size(); ++i)
        if (row[i] > row[best]) best = i;
    return static_cast<int32_t>(best);
}

// Compares rows of logits with the contract's criteria; returns the first failure or "".
struct RowsVerdict {
    std::string failure;
    double min_cosine = 1.0;
    uint32_t top1 = 0, rows = 0;
};
RowsVerdict compare_rows(const std::vector<float>& reference, const std::vector<float>& candidate, uint32_t n_vocab,
                         uint32_t first_pos, const GateSettings& settings, const std::string& what) {
    RowsVerdict v;
    const size_t rows = reference.size() / n_vocab;
    for (size_t r = 0; r < rows; ++r) {
        std::span<const float> ref(&reference[r * n_vocab], n_vocab), got(&candidate[r * n_vocab], n_vocab);
        PositionComparison c = compare_logits(ref, got, settings.criteria);
        if (!c.passed) {
            v.failure = what + ", position " + std::to_string(first_pos + r) + ": " + c.failure;
            return v;
        }
        v.min_cosine = std::min(v.min_cosine, c.cosine);
        v.top1 += c.candidate_argmax == c.reference_argmax;
        ++v.rows;
    }
    return v;
}

std::string figures(const RowsVerdict& v) {
    return "cos>=" + fixed(v.min_cosine, 5) + " top1 " + std::to_string(v.top1) + "/" + std::to_string(v.rows);
}

// The model, the plugin and a session on it, as the step checks need them.
struct Bench {
    std::unique_ptr<Model> model;
    std::shared_ptr<PluginLibrary> library;
    apr_session_config config{sizeof(apr_session_config), kSessionContext, 0};

    Bench(const CheckContext& c, const ProgressFn& progress) {
        progress("loading the model " + c.models.front().path.string());
        model = Model::load(c.models.front().path.string());
        library = load(c, progress);
        progress("probe");
        library->probe();
    }
    const apr_model_view& view() const { return model->view(); }
    uint32_t n_vocab() const { return view().n_vocab; }
    std::unique_ptr<BackendSession> open(const ProgressFn& progress) {
        progress("open (n_ctx " + std::to_string(config.n_ctx) + ")");
        return library->open(view(), config);
    }
    std::unique_ptr<ReferenceForward> reference(unsigned threads) const {
        return std::make_unique<ReferenceForward>(view(), config.n_ctx, threads);
    }
};

// Runs a check body, turning a rejection (the core's view of a failed call) into its reason.
template <typename F>
CheckOutcome rejections_fail(F&& body) {
    try {
        return body();
    } catch (const RejectionError& e) {
        return fail(rejection_text(e));
    }
}

// ---- the checks --------------------------------------------------------------------------------

CheckOutcome check_file_name(const CheckContext& c, const ProgressFn&) {
    const std::string file = c.plugin.filename().string();
    auto name = backend_name_from_filename(file);
    if (!name) return fail("'" + file + "' is not named libapr_backend_<name>.so: apr's discovery never loads it");
    return pass("backend '" + *name + "'");
}

CheckOutcome check_load_abi(const CheckContext& c, const ProgressFn& progress) {
    return rejections_fail([&] {
        auto lib = load(c, progress);
        const apr_backend_desc& d = lib->descriptor();
        return pass("ABI " + std::to_string(d.abi_version) + ", descriptor " + std::to_string(d.struct_size) +
                    " bytes, name '" + d.name + "' matches the file, both symbols exported");
    });
}

CheckOutcome check_descriptor(const CheckContext& c, const ProgressFn& progress) {
    return rejections_fail([&] {
        auto lib = load(c, progress);
        const apr_backend_desc& d = lib->descriptor();
        const std::string name = d.name;
        for (char ch : name)
            if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
                return fail("name '" + name + "' has characters other than a-z, 0-9 and '_'");
        if (name.empty()) return fail("name is empty");
        if (!*d.display_name) return fail("display_name is empty");
        if (!*d.plugin_version) return fail("plugin_version is empty");
        const uint32_t known = APR_BACKEND_FLAG_CPU | APR_BACKEND_FLAG_GPU;
        if (d.flags & ~known) return fail("flags has unknown bits: 0x" + std::to_string(d.flags & ~known));
        const bool cpu = d.flags & APR_BACKEND_FLAG_CPU, gpu = d.flags & APR_BACKEND_FLAG_GPU;
        if (cpu == gpu) return fail("flags must have exactly one of APR_BACKEND_FLAG_CPU and APR_BACKEND_FLAG_GPU");
        // The core orders backends and applies --no-gpu from the file, without loading it.
        progress("reading the descriptor from the file (as --no-gpu does)");
        std::string error;
        auto peek = peek_descriptor(c.plugin, error);
        if (!peek) return fail("the core cannot read the descriptor from the file without loading it: " + error);
        if (peek->abi_version != d.abi_version || peek->struct_size != d.struct_size || peek->priority != d.priority ||
            peek->flags != d.flags)
            return fail("the descriptor read from the file differs from the loaded one (it must be constant data, "
                        "initialised at compile time)");
        return pass("'" + std::string(d.display_name) + "' " + d.plugin_version + ", priority " +
                    std::to_string(d.priority) + ", " + (gpu ? "gpu" : "cpu") + "; the file's peeked fields agree");
    });
}

CheckOutcome check_probe(const CheckContext& c, const ProgressFn& progress) {
    return rejections_fail([&] {
        auto lib = load(c, progress);
        progress("probe");
        apr_device_info first = lib->probe();
        progress("probe, a second time");
        lib->probe();
        return pass(std::string(first.description) + (first.driver[0] ? std::string(" / ") + first.driver : ""));
    });
}

CheckOutcome check_open_close(const CheckContext& c, const ProgressFn& progress) {
    return rejections_fail([&] {
        Bench b(c, progress);
        for (int i = 0; i < 3; ++i) b.open(progress).reset();
        auto first = b.open(progress);
        auto second = b.open(progress);
        progress("close two sessions");
        second.reset();
        first.reset();
        return pass("3 open/close cycles, then 2 sessions open at once");
    });
}

CheckOutcome check_prefill(const CheckContext& c, const ProgressFn& progress) {
    return rejections_fail([&] {
        Bench b(c, progress);
        auto session = b.open(progress);
        const auto tokens = test_tokens(b.view(), kPrefill, 0);
        std::vector<float> got(static_cast<size_t>(kPrefill) * b.n_vocab(), NAN), want(got.size());
        progress("step: prefill of " + std::to_string(kPrefill) + " tokens at position 0, logits for all");
        session->step(tokens.data(), kPrefill, 0, true, got.data());
        b.reference(c.reference_threads)->step(tokens.data(), kPrefill, 0, true, want.data());
        RowsVerdict v = compare_rows(want, got, b.n_vocab(), 0, c.gate, "prefill");
        if (!v.failure.empty()) return fail(v.failure);
        return pass(std::to_string(kPrefill) + " tokens, " + figures(v));
    });
}

CheckOutcome check_decode(const CheckContext& c, const ProgressFn& progress) {
    return rejections_fail([&] {
        Bench b(c, progress);
        auto session = b.open(progress);
        auto reference = b.reference(c.reference_threads);
        const uint32_t nv = b.n_vocab();
        const auto tokens = test_tokens(b.view(), kPrefill, 1);
        std::vector<float> got(nv), want(nv);
        progress("step: prefill of " + std::to_string(kPrefill) + " tokens");
        session->step(tokens.data(), kPrefill, 0, false, got.data());
        reference->step(tokens.data(), kPrefill, 0, false, want.data());
        std::vector<float> all_got, all_want;
        for (uint32_t pos = kPrefill; pos < kPrefill + 4; ++pos) {
            const int32_t next = argmax(want);  // each step is fed the reference's argmax, as the gate does
            progress("step: decode at position " + std::to_string(pos));
            session->step(&next, 1, pos, false, got.data());
            reference->step(&next, 1, pos, false, want.data());
            all_got.insert(all_got.end(), got.begin(), got.end());
            all_want.insert(all_want.end(), want.begin(), want.end());
        }
        RowsVerdict v = compare_rows(all_want, all_got, nv, kPrefill, c.gate, "decode");
        if (!v.failure.empty()) return fail(v.failure);
        return pass("4 single-token steps after the prefill, " + figures(v));
    });
}

CheckOutcome check_last_vs_all(const CheckContext& c, const ProgressFn& progress) {
    return rejections_fail([&] {
        Bench b(c, progress);
        const uint32_t nv = b.n_vocab();
        const auto tokens = test_tokens(b.view(), kPrefill, 2);
        // Without APR_STEP_LOGITS_ALL exactly one row is written: the rest of the buffer must
        // keep its canary values.
        constexpr float kCanary = -12345.5f;
        std::vector<float> last(2 * static_cast<size_t>(nv), kCanary);
        {
            auto session = b.open(progress);
            progress("step: prefill, logits for the last token only");
            session->step(tokens.data(), kPrefill, 0, false, last.data());
        }
        for (size_t i = nv; i < last.size(); ++i)
            if (last[i] != kCanary)
                return fail("without APR_STEP_LOGITS_ALL the plugin wrote past the n_vocab floats of one row (float " +
                            std::to_string(i) + ")");
        std::vector<float> all(static_cast<size_t>(kPrefill) * nv + nv, kCanary);
        {
            auto session = b.open(progress);
            progress("step: prefill, logits for all tokens");
            session->step(tokens.data(), kPrefill, 0, true, all.data());
        }
        for (size_t i = static_cast<size_t>(kPrefill) * nv; i < all.size(); ++i)
            if (all[i] != kCanary) return fail("with APR_STEP_LOGITS_ALL the plugin wrote past n_tokens rows");
        std::vector<float> want(nv);
        b.reference(c.reference_threads)->step(tokens.data(), kPrefill, 0, false, want.data());
        RowsVerdict v = compare_rows(want, std::vector<float>(last.begin(), last.begin() + nv), nv, kPrefill - 1, c.gate,
                                     "last-token logits vs the reference");
        if (!v.failure.empty()) return fail(v.failure);
        std::vector<float> all_last(all.begin() + static_cast<ptrdiff_t>(kPrefill - 1) * nv,
                                    all.begin() + static_cast<ptrdiff_t>(kPrefill) * nv);
        RowsVerdict same = compare_rows(std::vector<float>(last.begin(), last.begin() + nv), all_last, nv, kPrefill - 1,
                                        c.gate, "the last row of all-logits vs last-only logits");
        if (!same.failure.empty()) return fail(same.failure);
        return pass("one row without the flag, n_tokens rows with it; they agree (" + figures(v) + ")");
    });
}

CheckOutcome check_rewind(const CheckContext& c, const ProgressFn& progress) {
    return rejections_fail([&] {
        Bench b(c, progress);
        const uint32_t nv = b.n_vocab();
        auto session = b.open(progress);
        auto reference = b.reference(c.reference_threads);
        const auto first = test_tokens(b.view(), kPrefill + 2, 3);
        const auto second = test_tokens(b.view(), 4, 4);
        std::vector<float> got(4 * static_cast<size_t>(nv)), want(got.size());
        progress("step: " + std::to_string(kPrefill + 2) + " tokens at position 0");
        session->step(first.data(), kPrefill + 2, 0, false, got.data());
        reference->step(first.data(), kPrefill + 2, 0, false, want.data());
        // Back to position 5: everything from there on is forgotten and replaced.
        const uint32_t back = 5;
        progress("step: rewind to position " + std::to_string(back) + " with 3 other tokens");
        std::vector<float> got3(3 * static_cast<size_t>(nv)), want3(got3.size());
        session->step(second.data() + 1, 3, back, true, got3.data());
        reference->step(second.data() + 1, 3, back, true, want3.data());
        RowsVerdict v = compare_rows(want3, got3, nv, back, c.gate, "after rewinding to position 5");
        if (!v.failure.empty()) return fail(v.failure);
        progress("step: decode right after the rewound run (position " + std::to_string(back + 3) + ")");
        const int32_t next = argmax(std::span<const float>(&want3[2 * static_cast<size_t>(nv)], nv));
        std::vector<float> g1(nv), w1(nv);
        session->step(&next, 1, back + 3, false, g1.data());
        reference->step(&next, 1, back + 3, false, w1.data());
        RowsVerdict d = compare_rows(w1, g1, nv, back + 3, c.gate, "decoding after a rewind");
        if (!d.failure.empty()) return fail(d.failure);
        progress("step: rewind to position 0");
        session->step(second.data(), 2, 0, false, g1.data());
        reference->step(second.data(), 2, 0, false, w1.data());
        RowsVerdict z = compare_rows(w1, g1, nv, 1, c.gate, "after rewinding to position 0");
        if (!z.failure.empty()) return fail(z.failure);
        return pass("rewinds to 5 and to 0 match the reference (" + figures(v) + ")");
    });
}

// One call the plugin must refuse: with a status (the step or open threw a RejectionError)
// and a reason of its own. Returns "" when it did, or what went wrong.
template <typename F>
std::string must_refuse(const std::string& what, const ProgressFn& progress, F&& call) {
    progress(what);
    try {
        call();
    } catch (const RejectionError& e) {
        const std::string& r = e.rejection.reason;
        if (r.find("a C++ exception crossed the plugin ABI") != std::string::npos)
            return what + ": an exception crossed the ABI instead of a status";
        if (r.find("(the plugin gave no reason)") != std::string::npos) return what + ": refused, but last_error is empty";
        return "";
    }
    return what + ": returned APR_OK";
}

CheckOutcome check_errors(const CheckContext& c, const ProgressFn& progress) {
    return rejections_fail([&] {
        Bench b(c, progress);
        const uint32_t nv = b.n_vocab();
        auto session = b.open(progress);
        const auto tokens = test_tokens(b.view(), kSessionContext, 5);
        std::vector<float> logits(static_cast<size_t>(kSessionContext) * nv);
        progress("step: 4 tokens at position 0");
        session->step(tokens.data(), 4, 0, false, logits.data());
        std::vector<std::string> problems;
        auto note = [&](std::string p) {
            if (!p.empty()) problems.push_back(std::move(p));
        };
        note(must_refuse("step at position 10 with 4 cached", progress,
                         [&] { session->step(tokens.data(), 1, 10, false, logits.data()); }));
        note(must_refuse("step past n_ctx (position 4 + 29 tokens > 32)", progress,
                         [&] { session->step(tokens.data(), 29, 4, false, logits.data()); }));
        note(must_refuse("step with tokens = NULL", progress, [&] { session->step(nullptr, 1, 4, false, logits.data()); }));
        note(must_refuse("step with logits = NULL", progress, [&] { session->step(tokens.data(), 1, 4, false, nullptr); }));
        const int32_t bad_ids[2] = {static_cast<int32_t>(nv), -1};
        note(must_refuse("step with token id n_vocab", progress, [&] { session->step(&bad_ids[0], 1, 4, false, logits.data()); }));
        note(must_refuse("step with token id -1", progress, [&] { session->step(&bad_ids[1], 1, 4, false, logits.data()); }));

        // The session must still work after refusing: position 4 continues the first 4 tokens.
        progress("step: position 4 after the refused calls");
        std::vector<float> got(nv), want(nv);
        session->step(&tokens[4], 1, 4, false, got.data());
        auto reference = b.reference(c.reference_threads);
        reference->step(tokens.data(), 5, 0, false, want.data());
        RowsVerdict v = compare_rows(want, got, nv, 4, c.gate, "the session after refused calls");
        if (!v.failure.empty()) problems.push_back(v.failure);

        // A model with a tensor type no plugin knows must be refused at open, not crash later.
        std::vector<apr_tensor_view> tensors(b.view().tensors, b.view().tensors + b.view().n_tensors);
        for (auto& t : tensors)
            if (std::string(t.name) == "blk.0.attn_q.weight") t.type = 99;
        apr_model_view odd = b.view();
        odd.tensors = tensors.data();
        note(must_refuse("open a model whose blk.0.attn_q.weight has type id 99", progress,
                         [&] { b.library->open(odd, b.config); }));
        if (!problems.empty()) {
            std::string all;
            for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
            return fail(all);
        }
        return pass("7 bad calls refused with a status and a reason; the session still steps");
    });
}

CheckOutcome check_gate(const CheckContext& c, const CheckModel& m, const ProgressFn& progress) {
    return rejections_fail([&] {
        progress("loading the model " + m.path.string());
        auto model = Model::load(m.path.string());
        auto lib = load(c, progress);
        progress("probe");
        apr_device_info device = lib->probe();
        GateSettings settings = c.gate;
        settings.reference_threads = c.reference_threads;
        apr_session_config config{sizeof(apr_session_config), std::max<uint32_t>(settings.positions, 16), 0};
        progress("open");
        auto session = lib->open(model->view(), config);
        ParityGate gate(model->view(), settings);
        progress("parity gate over " + std::to_string(settings.positions) + " positions");
        contract::GateSummary s = gate.run(*session);
        return pass("cos=" + fixed(s.min_cosine, 5) + " top1 " + std::to_string(s.top1_agree) + "/" +
                    std::to_string(s.positions) + " on " + device.description);
    });
}

}  // namespace

std::vector<Check> conformance_checks(const CheckContext& context) {
    std::vector<Check> checks = {
        {"file name", "", check_file_name},
        {"load + ABI", "", check_load_abi},
        {"descriptor", "load + ABI", check_descriptor},
        {"probe", "load + ABI", check_probe},
        {"open/close", "probe", check_open_close},
        {"step: prefill", "open/close", check_prefill},
        {"step: decode", "open/close", check_decode},
        {"logits last vs all", "open/close", check_last_vs_all},
        {"rewind", "open/close", check_rewind},
        {"error reporting", "open/close", check_errors},
    };
    for (const CheckModel& m : context.models)
        checks.push_back({"parity gate: " + m.label, "probe",
                          [m](const CheckContext& c, const ProgressFn& p) { return check_gate(c, m, p); }});
    return checks;
}

}  // namespace apr::plugin_check
