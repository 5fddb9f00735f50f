#include "session.hpp"

#include "weight_repack.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <string>

namespace apr_cuda {
namespace {

constexpr size_t kAlign = 256;
constexpr size_t kLogitsBudgetBytes = size_t(256) << 20;  // device + pinned logits of one chunk

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

bool env_is(const char* name, const char* value) {
    const char* v = std::getenv(name);
    return v && std::strcmp(v, value) == 0;
}

[[noreturn]] void invalid(const std::string& message) {
    throw BackendError(APR_ERR_INVALID_ARGUMENT, "cuda backend: " + message);
}

}  // namespace

Session::Session(const apr_model_view& model, uint32_t n_ctx) : layout_(check_model(model)), n_ctx_(n_ctx) {
    if (n_ctx == 0) invalid("n_ctx is 0");
    cuda_check(cudaGetDevice(&device_), "cudaGetDevice");
    cudaDeviceProp prop{};
    cuda_check(cudaGetDeviceProperties(&prop, device_), "cudaGetDeviceProperties");
    n_sm_ = std::max(1, prop.multiProcessorCount);
    profile_ = env_is("APR_CUDA_PROFILE", "1");
    use_graph_ = !env_is("APR_CUDA_GRAPH", "0") && !profile_;
    fuse_epilogues_ = !env_is("APR_CUDA_NO_NORM_FUSION", "1");
    // 8 MiB measured best on the H200 (7B Q4_0 tg128, one run: 0 KiB 508.8, 4 MiB 523.9, 8 MiB
    // 531.8, 16 MiB 523.9, 32 MiB 505.2 tokens/s; Q4_K 480.6 -> 497.8): more competes with the
    // product still streaming.
    l2_warm_bytes_ = size_t(8) << 20;
    if (const char* kb = std::getenv("APR_CUDA_L2_WARM_KB")) l2_warm_bytes_ = size_t(std::max(0L, std::atol(kb))) << 10;
    tc_attention_ = !env_is("APR_CUDA_TC_ATTENTION", "0");
    configure_matvec(int(prop.sharedMemPerBlockOptin), n_sm_);
    cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    try {
        upload_weights(layout_);
        allocate_state();
    } catch (...) {
        cudaStreamDestroy(stream_);
        throw;
    }
}

Session::~Session() {
    if (decode_graph_) cudaGraphExecDestroy(decode_graph_);
    if (stream_) {
        cudaStreamSynchronize(stream_);
        cudaStreamDestroy(stream_);
    }
    if (profile_) print_profile();
    for (cudaEvent_t e : profile_events_) cudaEventDestroy(e);
}

void Session::mark(const char* what) {
    if (!profile_) return;
    if (profile_marks_ == profile_events_.size()) {
        cudaEvent_t e = nullptr;
        cuda_check(cudaEventCreate(&e), "cudaEventCreate (profile)");
        profile_events_.push_back(e);
        profile_names_.push_back(nullptr);
    }
    profile_names_[profile_marks_] = what;
    cuda_check(cudaEventRecord(profile_events_[profile_marks_], stream_), "cudaEventRecord (profile)");
    ++profile_marks_;
}

void Session::collect_profile(bool decode) {
    if (!profile_) return;
    const std::string prefix = decode ? "decode " : "prefill ";
    for (size_t i = 1; i < profile_marks_; ++i) {
        float ms = 0;
        cuda_check(cudaEventElapsedTime(&ms, profile_events_[i - 1], profile_events_[i]), "cudaEventElapsedTime");
        const std::string what = prefix + profile_names_[i];
        auto it = std::find_if(profile_totals_.begin(), profile_totals_.end(),
                               [&](const ProfileTotal& t) { return t.what == what; });
        if (it == profile_totals_.end()) it = profile_totals_.insert(profile_totals_.end(), ProfileTotal{what});
        it->ms += ms;
        it->count += 1;
    }
    profile_passes_[decode ? 1 : 0] += 1;
    profile_marks_ = 0;
}

void Session::print_profile() const {
    for (int decode = 0; decode < 2; ++decode) {
        const long passes = profile_passes_[decode];
        if (passes == 0) continue;
        const std::string prefix = decode ? "decode " : "prefill ";
        double total = 0;
        for (const ProfileTotal& t : profile_totals_)
            if (t.what.rfind(prefix, 0) == 0) total += t.ms;
        std::fprintf(stderr, "[cuda profile] %s: %ld forward passes, %.3f ms per pass (GPU time between events)\n",
                     prefix.c_str(), passes, total / double(passes));
        for (const ProfileTotal& t : profile_totals_)
            if (t.what.rfind(prefix, 0) == 0)
                std::fprintf(stderr, "[cuda profile]   %-36s %9.4f ms/pass %6.2f%%  (%ld launches/pass)\n",
                             t.what.c_str(), t.ms / double(passes), total > 0 ? 100.0 * t.ms / total : 0.0,
                             t.count / passes);
    }
}

void Session::upload_weights(const ModelLayout& m) {
    // Every tensor once (a tied output.weight shares token_embd's bytes), each 256-byte aligned.
    std::map<const void*, size_t> offsets;
    std::vector<const TensorRef*> all = {&m.token_embd, &m.output_norm, &m.output, &m.rope_freqs};
    for (const LayerRefs& L : m.layers)
        for (const TensorRef* t : {&L.attn_norm, &L.ffn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.bq, &L.bk, &L.bv,
                                   &L.q_norm, &L.k_norm, &L.gate, &L.up, &L.down})
            all.push_back(t);
    size_t total = 0;
    for (const TensorRef* t : all) {
        if (!t->present() || offsets.count(t->view->data)) continue;
        offsets[t->view->data] = total;
        total += align_up(t->view->n_bytes);
    }
    // Matrices that only the matrix products read are stored in the device layout of their type
    // (weight_repack.hpp); the embedding table keeps its own, and so does an output matrix tied to it.
    std::map<const void*, uint32_t> device_type;
    auto note_matrix = [&](const TensorRef& t) {
        if (t.present()) device_type[t.view->data] = device_weight_type(t.type, t.cols);
    };
    note_matrix(m.output);
    for (const LayerRefs& L : m.layers)
        for (const TensorRef* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down}) note_matrix(*t);
    if (m.token_embd.present()) device_type.erase(m.token_embd.view->data);

    weights_ = DeviceBuffer(total, "model weights");
    std::map<const void*, bool> copied;
    std::vector<uint8_t> staging;
    for (const TensorRef* t : all) {
        if (!t->present() || copied[t->view->data]) continue;
        copied[t->view->data] = true;
        const void* src = t->view->data;
        const auto dt = device_type.find(t->view->data);
        if (dt != device_type.end() && dt->second != t->type) {
            staging.resize(t->view->n_bytes);
            repack_rows(t->type, t->cols, static_cast<const uint8_t*>(t->view->data), staging.data(), t->rows,
                        t->row_bytes);
            src = staging.data();
        }
        cuda_check(cudaMemcpy(weights_.get<uint8_t>() + offsets[t->view->data], src, t->view->n_bytes,
                              cudaMemcpyHostToDevice),
                   "uploading weights (cudaMemcpy)");
    }
    auto vec = [&](const TensorRef& t) -> const float* {
        return t.present() ? reinterpret_cast<const float*>(weights_.get<uint8_t>() + offsets[t.view->data]) : nullptr;
    };
    auto mat = [&](const TensorRef& t) {
        DeviceMatrix d;
        d.data = weights_.get<uint8_t>() + offsets[t.view->data];
        const auto dt = device_type.find(t.view->data);
        d.type = dt != device_type.end() ? dt->second : t.type;
        d.rows = int(t.rows);
        d.cols = int(t.cols);
        d.row_bytes = t.row_bytes;
        return d;
    };
    token_embd_ = mat(m.token_embd);
    output_ = mat(m.output);
    output_norm_ = vec(m.output_norm);
    rope_freqs_ = vec(m.rope_freqs);
    layers_.resize(m.n_layer);
    for (uint32_t l = 0; l < m.n_layer; ++l) {
        const LayerRefs& R = m.layers[l];
        Layer& L = layers_[l];
        L.attn_norm = vec(R.attn_norm);
        L.ffn_norm = vec(R.ffn_norm);
        L.bq = vec(R.bq);
        L.bk = vec(R.bk);
        L.bv = vec(R.bv);
        L.q_norm = vec(R.q_norm);
        L.k_norm = vec(R.k_norm);
        L.wq = mat(R.wq);
        L.wk = mat(R.wk);
        L.wv = mat(R.wv);
        L.wo = mat(R.wo);
        L.gate = mat(R.gate);
        L.up = mat(R.up);
        L.down = mat(R.down);
    }
}

void Session::allocate_state() {
    const ModelLayout& m = layout_;
    const size_t E = m.n_embd, Q = m.q_dim(), KV = m.kv_dim(), F = m.n_ff, V = m.n_vocab;

    // Tokens per forward pass: bounded by the logits budget (all-logits prefills of a large
    // vocabulary) and by the context.
    const size_t by_logits = std::max<size_t>(16, kLogitsBudgetBytes / (V * sizeof(float)));
    ubatch_ = int(std::min<size_t>({512, by_logits, n_ctx_}));
    // KV cache: f32 by default (as llama.cpp's reference runs), f16 when APR_CUDA_KV=f16.
    const bool kv_f16 = env_is("APR_CUDA_KV", "f16");

    // Decode attention: splits of split_keys_ keys, as many as the context has (a shorter one
    // leaves the rest of the grid idle), at most as many as let every (head, split) block be
    // resident at once: beyond that the splits grow. A second, partial wave of blocks costs more
    // than the longer splits (H200, 7B Q4_0 tg128 at depth 4096, f32 cache, 5 blocks per SM:
    // at most 16 / 20 / 24 / 32 / 48 / 64 / 128 splits gave 335 / 336 / 320 / 329 / 322 / 322 /
    // 324 tokens/s, 20 being one wave). 32 keys per split measured best at tg128 (511 tokens/s,
    // 509 with 64, 506 with 128). APR_CUDA_SPLIT_KEYS (rounded to a multiple of 32) and
    // APR_CUDA_MAX_SPLITS (up to 128) set them, for measurements.
    const char* split_keys_env = std::getenv("APR_CUDA_SPLIT_KEYS");
    const char* max_splits_env = std::getenv("APR_CUDA_MAX_SPLITS");
    split_keys_ = (std::max(32, split_keys_env ? std::atoi(split_keys_env) : 32) + 31) / 32 * 32;
    const int one_wave = attention_resident_blocks(kv_f16, int(m.head_dim)) * n_sm_ / int(m.n_head);
    const int max_splits = std::clamp(max_splits_env ? std::atoi(max_splits_env) : one_wave, 1, 128);
    decode_splits_ = std::clamp(int((n_ctx_ + split_keys_ - 1) / split_keys_), 1, max_splits);
    partial_slots_ = std::max(decode_splits_ * int(m.n_head), ubatch_ * int(m.n_head));

    const size_t elem = kv_f16 ? 2 : 4;
    const size_t per_tensor = align_up(size_t(n_ctx_) * KV * elem);
    kv_cache_ = DeviceBuffer(per_tensor * 2 * m.n_layer, "KV cache");
    for (uint32_t l = 0; l < m.n_layer; ++l) {
        layers_[l].kv.k = kv_cache_.get<uint8_t>() + per_tensor * (2 * l);
        layers_[l].kv.v = kv_cache_.get<uint8_t>() + per_tensor * (2 * l + 1);
        layers_[l].kv.f16 = kv_f16;
    }
    cuda_check(cudaMemset(kv_cache_.get(), 0, kv_cache_.bytes()), "clearing the KV cache");

    const size_t U = size_t(ubatch_);
    x_ = DeviceBuffer(U * E * 4, "activations");
    xb_ = DeviceBuffer(U * E * 4, "activations");
    q_ = DeviceBuffer(U * Q * 4, "queries");
    k_ = DeviceBuffer(U * KV * 4, "keys");
    v_ = DeviceBuffer(U * KV * 4, "values");
    attn_ = DeviceBuffer(U * Q * 4, "attention output");
    gate_ = DeviceBuffer(U * F * 4, "feed-forward gate");
    up_ = DeviceBuffer(U * F * 4, "feed-forward up");
    logits_ = DeviceBuffer(U * V * 4, "logits");
    partial_acc_ = DeviceBuffer(size_t(partial_slots_) * m.head_dim * 4, "attention partials");
    partial_ml_ = DeviceBuffer(size_t(partial_slots_) * 2 * 4, "attention partials");
    // One per (token, head) of the split attention, which runs below kPrefillQueries (16) tokens.
    split_counters_ = DeviceBuffer(size_t(16) * m.n_head * sizeof(int), "attention split counters");
    cuda_check(cudaMemset(split_counters_.get(), 0, split_counters_.bytes()), "clearing the split counters");
    // Prepared matrix-product inputs: up to max(n_embd, q_dim, n_ff) values per token.
    const size_t widest = std::max({E, Q, F});
    act_rounded_ = DeviceBuffer(U * widest * 4, "rounded activations");
    act_q_ = DeviceBuffer(align_up(U * widest), "quantized activations");
    act_ds_ = DeviceBuffer(U * ((widest + 31) / 32) * sizeof(float2), "activation scales");
    act_.rounded = act_rounded_.get<float>();
    act_.q = act_q_.get<int8_t>();
    act_.ds = act_ds_.get<float2>();
    act_.capacity = U * widest;
    act_b_q_ = DeviceBuffer(align_up(widest), "quantized activations (decode epilogues)");
    act_b_ds_ = DeviceBuffer(((widest + 31) / 32) * sizeof(float2), "activation scales (decode epilogues)");
    act_b_.q = act_b_q_.get<int8_t>();
    act_b_.ds = act_b_ds_.get<float2>();
    act_b_.capacity = widest;
    epilogue_.groups = (widest + 255) / 256;
    epilogue_counters_ = DeviceBuffer(epilogue_.groups * sizeof(int), "epilogue arrival counters");
    epilogue_sumsq_ = DeviceBuffer(epilogue_.groups * sizeof(float), "epilogue sums of squares");
    cuda_check(cudaMemset(epilogue_counters_.get(), 0, epilogue_counters_.bytes()), "clearing the epilogue counters");
    epilogue_.counters = epilogue_counters_.get<int>();
    epilogue_.sumsq = epilogue_sumsq_.get<float>();
    tokens_ = DeviceBuffer(U * 4, "token ids");
    positions_ = DeviceBuffer(U * 4, "positions");
    rope_angles_ = DeviceBuffer(U * std::max<size_t>(1, m.n_rot / 2) * sizeof(double2), "RoPE angles");
    host_logits_ = PinnedBuffer(U * V * 4, "logits");
    host_tokens_ = PinnedBuffer(U * 4, "token ids");
    host_positions_ = PinnedBuffer(U * 4, "positions");
    cuda_check(cudaDeviceSynchronize(), "session setup");
}

int Session::prefill_splits(int n_tokens) const {
    // Enough (token, head, split) blocks to fill the GPU a few times over, within the buffers.
    const int per_split = n_tokens * int(layout_.n_head);
    const int wanted = (4 * n_sm_ + per_split - 1) / per_split;
    return std::max(1, std::min({wanted, decode_splits_, partial_slots_ / per_split}));
}

void Session::enqueue_forward(int nt, int n_out_rows, int n_splits) {
    const ModelLayout& m = layout_;
    const int E = int(m.n_embd), Q = int(m.q_dim()), KV = int(m.kv_dim()), F = int(m.n_ff), V = int(m.n_vocab);
    const int hd = int(m.head_dim);
    const float eps = m.rms_norm_eps;
    float *x = x_.get<float>(), *xb = xb_.get<float>(), *q = q_.get<float>(), *k = k_.get<float>(),
          *v = v_.get<float>(), *attn = attn_.get<float>(), *g = gate_.get<float>(), *u = up_.get<float>();
    const int32_t* tokens = tokens_.get<int32_t>();
    const int32_t* positions = positions_.get<int32_t>();

    RopeParams rp;
    rp.n_head = int(m.n_head);
    rp.n_head_kv = int(m.n_head_kv);
    rp.head_dim = hd;
    rp.n_rot = int(m.n_rot);
    rp.rope_type = int(m.rope_type);
    rp.freq_base = m.rope_freq_base;
    rp.freq_scale = m.rope_freq_scale;
    rp.freq_divisors = rope_freqs_;
    AttentionShape as;
    as.n_head = int(m.n_head);
    as.n_head_kv = int(m.n_head_kv);
    as.head_dim = hd;
    as.n_ctx = int(n_ctx_);

    mark("start");
    embed(token_embd_, tokens, nt, x, stream_);
    mark("embed");
    // Every layer rotates by the same angles: their f64 cosines and sines once per pass.
    rope_angles(positions, nt, rp, rope_angles_.get<double2>(), stream_);
    rp.angles = rope_angles_.get<double2>();
    mark("rope angles");
    static const bool fuse_rope = !env_is("APR_CUDA_FUSE_ROPE", "0");
    // A decode step's products prepare the next product's input themselves where they can (the
    // RMSNorm's 1/rms deferred to the consumer, SwiGLU in the gate/up product): 5 launches per
    // layer instead of 8. A deferred norm needs consumers that all take it.
    const bool fuse = fuse_epilogues_ && nt == 1;
    auto defers_norm = [](std::initializer_list<const DeviceMatrix*> consumers) {
        for (const DeviceMatrix* W : consumers)
            if (!takes_deferred_norm(W->type) || W->type != (*consumers.begin())->type) return false;
        return true;
    };
    // What a decode product prefetches into L2 for the next one: the first bytes of each matrix
    // in `next`, l2_warm_bytes_ in all (l2_warm.hpp).
    auto warm = [&](std::initializer_list<const DeviceMatrix*> next) {
        L2Warm w;
        if (!fuse || l2_warm_bytes_ == 0) return w;
        int k = 0;
        for (const DeviceMatrix* W : next) {
            const size_t size = size_t(W->rows) * W->row_bytes;
            w.p[k] = W->data;
            w.bytes[k] = uint32_t(std::min(size, l2_warm_bytes_ / next.size()) & ~size_t(15));
            ++k;
        }
        return w;
    };
    // The scratch an epilogue prepares into: not the one its own input lies in.
    auto other_scratch = [&](const ActInput& in) -> const ActScratch& { return in.q == act_.q ? act_b_ : act_; };
    ActInput in;
    bool prepared = false;  // `in` already holds the next product's input (from the last epilogue)
    for (size_t l = 0; l < layers_.size(); ++l) {
        const Layer& L = layers_[l];
        if (!prepared) {
            in = rms_norm_prepared(x, E, xb, L.attn_norm, E, nt, eps, L.wq.type, act_, stream_);
            mark("rms_norm + prepare");
        }
        prepared = false;
        bool roped = false;  // q and k rotated, k and v in the cache already
        if (L.wk.type == L.wq.type && L.wv.type == L.wq.type) {
            const MatmulOut qkv[3] = {{&L.wq, q, Q, L.bq}, {&L.wk, k, KV, L.bk}, {&L.wv, v, KV, L.bv}};
            // A decode step rotates and stores in the product's epilogue where it can
            // (APR_CUDA_FUSE_ROPE=0: never, for measurements).
            roped = fuse_rope && !L.q_norm && !L.k_norm &&
                    matmul_qkv_rope(qkv, in, rp, L.kv, as, positions, stream_, warm({&L.wo}));
            if (!roped) matmul_group(qkv, 3, in, stream_);
        } else {
            matmul(L.wq, in, q, Q, L.bq, nullptr, 0, stream_);
            in = prepare_input_for(in, L.wk.type, act_, stream_);
            matmul(L.wk, in, k, KV, L.bk, nullptr, 0, stream_);
            in = prepare_input_for(in, L.wv.type, act_, stream_);
            matmul(L.wv, in, v, KV, L.bv, nullptr, 0, stream_);
        }
        mark("matmul q k v");
        if (!roped) {
            if (L.q_norm) rms_norm(q, hd, q, hd, L.q_norm, hd, nt * int(m.n_head), eps, stream_);
            if (L.k_norm) rms_norm(k, hd, k, hd, L.k_norm, hd, nt * int(m.n_head_kv), eps, stream_);
            rope_and_store_kv(q, k, v, positions, nt, rp, L.kv, as, stream_);
            mark("(qk norm) rope + kv store");
        }
        // A decode step's attention quantizes its output for the output projection itself.
        const ActFormat wo_format = act_format_for(L.wo.type);
        const bool attn_q8 = attention_quantizes(as, nt, wo_format);
        attention(q, L.kv, as, positions, nt, n_splits, split_keys_, partial_acc_.get<float>(),
                  partial_ml_.get<float>(), split_counters_.get<int>(), attn, wo_format, attn_q8 ? act_.q : nullptr,
                  attn_q8 ? act_.ds : nullptr, tc_attention_, stream_);
        mark("attention");
        if (attn_q8) {
            in = ActInput{};
            in.format = wo_format;
            in.n_tokens = nt;
            in.cols = Q;
            in.src = attn;
            in.ld_src = Q;
            in.q = act_.q;
            in.ds = act_.ds;
        } else {
            in = prepare_input(attn, Q, nt, Q, L.wo.type, act_, stream_);
            mark("prepare attention output");
        }
        ActInput next;
        if (fuse && defers_norm({&L.gate, &L.up}) &&
            matmul_residual_norm(L.wo, in, x, L.ffn_norm, eps, L.gate.type, other_scratch(in), epilogue_, next,
                                 stream_, warm({&L.gate, &L.up}))) {
            in = next;
            mark("matmul o + residual + norm prepare");
        } else {
            matmul(L.wo, in, x, E, nullptr, x, E, stream_);
            mark("matmul o + residual");
            in = rms_norm_prepared(x, E, xb, L.ffn_norm, E, nt, eps, L.gate.type, act_, stream_);
            mark("rms_norm + prepare");
        }
        if (fuse && matmul_gate_up_swiglu(L.gate, L.up, in, g, L.down.type, other_scratch(in), epilogue_, next,
                                          stream_, warm({&L.down}))) {
            in = next;
            mark("matmul gate up + swiglu prepare");
        } else {
            if (L.up.type == L.gate.type) {
                const MatmulOut gate_up[2] = {{&L.gate, g, F}, {&L.up, u, F}};
                matmul_group(gate_up, 2, in, stream_);
            } else {
                matmul(L.gate, in, g, F, nullptr, nullptr, 0, stream_);
                in = prepare_input_for(in, L.up.type, act_, stream_);
                matmul(L.up, in, u, F, nullptr, nullptr, 0, stream_);
            }
            mark("matmul gate up");
            in = swiglu_prepared(g, u, F, nt, L.down.type, act_, stream_);
            mark("swiglu + prepare");
        }
        // The down product prepares the next layer's attention input, or the output's.
        const bool last = l + 1 == layers_.size();
        const Layer* N = last ? nullptr : &layers_[l + 1];
        const bool next_defers = last ? n_out_rows == 1 && defers_norm({&output_})
                                      : defers_norm({&N->wq, &N->wk, &N->wv});
        if (fuse && next_defers &&
            matmul_residual_norm(L.down, in, x, last ? output_norm_ : N->attn_norm, eps,
                                 last ? output_.type : N->wq.type, other_scratch(in), epilogue_, next, stream_,
                                 warm({last ? &output_ : &N->wq}))) {
            in = next;
            prepared = true;
            mark("matmul down + residual + norm prepare");
        } else {
            matmul(L.down, in, x, E, nullptr, x, E, stream_);
            mark("matmul down + residual");
        }
    }
    if (n_out_rows > 0) {
        const int first = nt - n_out_rows;
        if (!prepared) {
            in = rms_norm_prepared(x + size_t(first) * E, E, xb, output_norm_, E, n_out_rows, eps, output_.type, act_,
                                   stream_);
            mark("rms_norm + prepare");
        }
        matmul(output_, in, logits_.get<float>(), V, nullptr, nullptr, 0, stream_);
        mark("matmul output");
    }
}

void Session::run_chunk(const int32_t* tokens, int nt, uint32_t pos, int n_out_rows, float* logits) {
    int32_t* ht = host_tokens_.get<int32_t>();
    int32_t* hp = host_positions_.get<int32_t>();
    for (int i = 0; i < nt; ++i) {
        ht[i] = tokens[i];
        hp[i] = int32_t(pos + uint32_t(i));
    }
    cuda_check(cudaMemcpyAsync(tokens_.get(), ht, size_t(nt) * 4, cudaMemcpyHostToDevice, stream_), "token upload");
    cuda_check(cudaMemcpyAsync(positions_.get(), hp, size_t(nt) * 4, cudaMemcpyHostToDevice, stream_),
               "position upload");
    enqueue_forward(nt, n_out_rows, nt == 1 ? decode_splits_ : prefill_splits(nt));
    const size_t logit_bytes = size_t(n_out_rows) * layout_.n_vocab * 4;
    if (logit_bytes)
        cuda_check(cudaMemcpyAsync(host_logits_.get(), logits_.get(), logit_bytes, cudaMemcpyDeviceToHost, stream_),
                   "logits download");
    cuda_check(cudaStreamSynchronize(stream_), "forward pass");
    collect_profile(nt == 1);
    if (logit_bytes) std::memcpy(logits, host_logits_.get(), logit_bytes);
}

void Session::capture_decode_graph() {
    cuda_check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    cudaGraph_t graph = nullptr;
    try {
        cuda_check(cudaMemcpyAsync(tokens_.get(), host_tokens_.get(), 4, cudaMemcpyHostToDevice, stream_),
                   "token upload (captured)");
        cuda_check(cudaMemcpyAsync(positions_.get(), host_positions_.get(), 4, cudaMemcpyHostToDevice, stream_),
                   "position upload (captured)");
        enqueue_forward(1, 1, decode_splits_);
        cuda_check(cudaMemcpyAsync(host_logits_.get(), logits_.get(), size_t(layout_.n_vocab) * 4,
                                   cudaMemcpyDeviceToHost, stream_),
                   "logits download (captured)");
    } catch (...) {
        cudaStreamEndCapture(stream_, &graph);
        if (graph) cudaGraphDestroy(graph);
        cudaGetLastError();
        throw;
    }
    cuda_check(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture");
    const cudaError_t err = cudaGraphInstantiate(&decode_graph_, graph, 0);
    cudaGraphDestroy(graph);
    if (err != cudaSuccess) decode_graph_ = nullptr;
    cuda_check(err, "cudaGraphInstantiate");
}

void Session::run_decode(int32_t token, uint32_t pos, float* logits) {
    if (!use_graph_) {
        run_chunk(&token, 1, pos, 1, logits);
        return;
    }
    if (!decode_graph_) capture_decode_graph();
    host_tokens_.get<int32_t>()[0] = token;
    host_positions_.get<int32_t>()[0] = int32_t(pos);
    cuda_check(cudaGraphLaunch(decode_graph_, stream_), "cudaGraphLaunch (decode step)");
    cuda_check(cudaStreamSynchronize(stream_), "decode step");
    std::memcpy(logits, host_logits_.get(), size_t(layout_.n_vocab) * 4);
}

void Session::step(const int32_t* tokens, uint32_t n_tokens, uint32_t pos, bool all_logits, float* logits) {
    if (broken_) throw BackendError(APR_ERR_DEVICE_LOST, "cuda backend: session unusable after an earlier device error: " + broken_reason_);
    if (!tokens || !logits) invalid("tokens and logits must not be null");
    if (n_tokens == 0) invalid("n_tokens is 0");
    if (pos > n_cached_)
        invalid("pos " + std::to_string(pos) + " is beyond the " + std::to_string(n_cached_) + " cached positions");
    if (uint64_t(pos) + n_tokens > n_ctx_)
        invalid("pos " + std::to_string(pos) + " + " + std::to_string(n_tokens) + " tokens exceeds n_ctx " +
                std::to_string(n_ctx_));
    for (uint32_t i = 0; i < n_tokens; ++i)
        if (tokens[i] < 0 || uint32_t(tokens[i]) >= layout_.n_vocab)
            invalid("token id " + std::to_string(tokens[i]) + " at index " + std::to_string(i) + " is outside [0, " +
                    std::to_string(layout_.n_vocab) + ")");
    try {
        cuda_check(cudaSetDevice(device_), "cudaSetDevice");
        n_cached_ = pos;  // rewind: later entries are overwritten before anything reads them
        const size_t V = layout_.n_vocab;
        for (uint32_t start = 0; start < n_tokens; start += uint32_t(ubatch_)) {
            const int nt = int(std::min<uint32_t>(uint32_t(ubatch_), n_tokens - start));
            const bool last = start + uint32_t(nt) == n_tokens;
            const int out_rows = all_logits ? nt : (last ? 1 : 0);
            float* dst = all_logits ? logits + size_t(start) * V : logits;
            if (nt == 1 && out_rows == 1)
                run_decode(tokens[start], pos + start, dst);
            else
                run_chunk(tokens + start, nt, pos + start, out_rows, dst);
            n_cached_ = pos + start + uint32_t(nt);
        }
    } catch (const BackendError& e) {
        if (e.status() == APR_ERR_DEVICE_LOST) {
            broken_ = true;
            broken_reason_ = e.what();
        }
        throw;
    }
}

}  // namespace apr_cuda
