// A CUDA session: the model's weights uploaded once as stored (blocks, never dequantized), the
// KV cache and every scratch buffer allocated up front, and the forward pass enqueued on one
// stream. Decode steps replay a CUDA graph captured on the first one (token and position are
// read from device memory, so the graph fits every step); prefills run plain launches in
// chunks of up to `ubatch` tokens.
#pragma once

#include <apr/backend.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "device_buffer.hpp"
#include "kernels.hpp"
#include "model_layout.hpp"

namespace apr_cuda {

class Session {
public:
    // Throws BackendError (UNSUPPORTED for a model the kernels cannot run, OUT_OF_MEMORY, ...).
    Session(const apr_model_view& model, uint32_t n_ctx);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // apr_backend_step's contract; throws BackendError.
    void step(const int32_t* tokens, uint32_t n_tokens, uint32_t pos, bool all_logits, float* logits);

private:
    struct Layer {
        const float *attn_norm = nullptr, *ffn_norm = nullptr;
        const float *bq = nullptr, *bk = nullptr, *bv = nullptr;
        const float *q_norm = nullptr, *k_norm = nullptr;
        DeviceMatrix wq, wk, wv, wo, gate, up, down;
        KvLayer kv;
    };

    void upload_weights(const ModelLayout& layout);
    void allocate_state();
    // Enqueues the forward pass over the n_tokens tokens in d_tokens_/d_positions_, writing the
    // logits of the last n_out_rows of them to d_logits_.
    void enqueue_forward(int n_tokens, int n_out_rows, int n_splits);
    void run_chunk(const int32_t* tokens, int n_tokens, uint32_t pos, int n_out_rows, float* logits);
    void run_decode(int32_t token, uint32_t pos, float* logits);
    void capture_decode_graph();
    int prefill_splits(int n_tokens) const;
    // Profile mode (APR_CUDA_PROFILE=1; decode runs without the graph): an event after each
    // operation, the time since the previous event booked to the operation's name, and a table
    // per operation (mean per forward pass) printed to stderr when the session closes.
    void mark(const char* what);
    void collect_profile(bool decode);
    void print_profile() const;

    ModelLayout layout_;
    int device_ = 0;
    int n_sm_ = 1;
    uint32_t n_ctx_ = 0;
    uint32_t n_cached_ = 0;
    int ubatch_ = 0;           // most tokens per forward pass
    int decode_splits_ = 1;    // key splits of a decode step's attention (the most a step uses)
    int split_keys_ = 32;      // keys per split, at least (attention.cu)
    int partial_slots_ = 0;    // (token, head, split) slots in the partial buffers
    bool use_graph_ = true;
    bool profile_ = false;
    // A decode step's products prepare the next product's input in their epilogues (RMSNorm
    // deferred, SwiGLU fused: matmul_residual_norm, matmul_gate_up_swiglu) where they can;
    // APR_CUDA_NO_NORM_FUSION=1 keeps the separate preparation kernels (for A/B measurements).
    bool fuse_epilogues_ = true;
    // Bytes of the next product's weights each decode product prefetches into L2 (l2_warm.hpp);
    // APR_CUDA_L2_WARM_KB (0: none).
    size_t l2_warm_bytes_ = 0;
    // Prefill attention on tensor cores (attention_prefill_mma) where the head_dim allows;
    // APR_CUDA_TC_ATTENTION=0 keeps the SIMT prefill kernel (for A/B measurements).
    bool tc_attention_ = true;
    std::vector<cudaEvent_t> profile_events_;
    std::vector<const char*> profile_names_;
    size_t profile_marks_ = 0;
    struct ProfileTotal {
        std::string what;
        double ms = 0;
        long count = 0;
    };
    std::vector<ProfileTotal> profile_totals_;
    long profile_passes_[2] = {0, 0};  // prefill, decode
    bool broken_ = false;      // a device error happened; the session refuses further steps
    std::string broken_reason_;

    cudaStream_t stream_ = nullptr;
    cudaGraphExec_t decode_graph_ = nullptr;

    DeviceBuffer weights_;
    DeviceMatrix token_embd_, output_;
    const float* output_norm_ = nullptr;
    const float* rope_freqs_ = nullptr;
    std::vector<Layer> layers_;

    DeviceBuffer kv_cache_;
    DeviceBuffer x_, xb_, q_, k_, v_, attn_, gate_, up_, logits_, partial_acc_, partial_ml_, split_counters_, tokens_,
        positions_;
    DeviceBuffer rope_angles_;  // {cos, sin} per token and rotated pair, once per forward pass
    DeviceBuffer act_rounded_, act_q_, act_ds_;  // matrix-product inputs as llama.cpp rounds them
    ActScratch act_;
    // The decode epilogues' second input scratch (one token: a product never prepares into the
    // scratch it reads) and their arrival counters and sums of squares.
    DeviceBuffer act_b_q_, act_b_ds_, epilogue_counters_, epilogue_sumsq_;
    ActScratch act_b_;
    EpilogueScratch epilogue_;
    PinnedBuffer host_logits_, host_tokens_, host_positions_;
};

}  // namespace apr_cuda
