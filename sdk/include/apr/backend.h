/*
 * apr/backend.h — the apr backend plugin ABI, version 1.
 *
 * A backend is a shared library named `libapr_backend_<name>.so` that exports exactly two
 * symbols, both with C linkage:
 *
 *   const apr_backend_desc apr_backend_descriptor;   (data: what the plugin is, its lifecycle)
 *   apr_status apr_backend_step(...);                 (function: run tokens, write logits)
 *
 * The core reads `apr_backend_descriptor` before it calls anything, and rejects the plugin
 * unless `abi_version == APR_BACKEND_ABI_VERSION` and `struct_size` covers every field the
 * core needs (fields are only ever appended; see "Growing the ABI" below).
 *
 * Rules for plugin authors:
 *  - Plain C across the boundary: no exceptions, no C++ types. A function that fails returns a
 *    status other than APR_OK and makes the reason available through `last_error`.
 *  - The model arrives as a read-only apr_model_view built by the core. Plugins never open or
 *    parse model files; the tensor data pointers stay valid until `close` returns.
 *  - Include only headers of this SDK; link nothing of apr's core.
 *
 * Growing the ABI (how this header evolves, like the Vulkan loader/driver interface):
 *  - Structs passed in either direction start with `struct_size`, written by whoever fills the
 *    struct. New fields are appended; a reader uses a field only if struct_size covers it.
 *  - Incompatible changes bump APR_BACKEND_ABI_VERSION; the core refuses other versions.
 */
#ifndef APR_BACKEND_H
#define APR_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version this header describes. A plugin stores it in its descriptor. */
#define APR_BACKEND_ABI_VERSION 1u

/** The two exported symbol names, as strings, for loaders. */
#define APR_BACKEND_DESCRIPTOR_SYMBOL "apr_backend_descriptor"
#define APR_BACKEND_STEP_SYMBOL "apr_backend_step"

/** Marks the two exported symbols as visible even when a plugin builds with hidden visibility. */
#if defined(_WIN32)
#define APR_BACKEND_EXPORT __declspec(dllexport)
#else
#define APR_BACKEND_EXPORT __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------------------------------ */
/* Status codes                                                                               */
/* ------------------------------------------------------------------------------------------ */

/** Result of every call into a plugin. Anything but APR_OK comes with a `last_error` text. */
typedef enum apr_status {
    APR_OK = 0,
    APR_ERR_NO_DEVICE = 1,        /**< probe: no usable device (no driver, no GPU, missing CPU features) */
    APR_ERR_UNSUPPORTED = 2,      /**< open: the model uses something this backend cannot run */
    APR_ERR_OUT_OF_MEMORY = 3,    /**< open/step: the device cannot hold the model or the cache */
    APR_ERR_INVALID_ARGUMENT = 4, /**< a caller broke the contract (null pointer, position out of range) */
    APR_ERR_DEVICE_LOST = 5,      /**< step: the device failed while running */
    APR_ERR_INTERNAL = 6          /**< anything else; the message says what */
} apr_status;

/* ------------------------------------------------------------------------------------------ */
/* The model view (built by the core, read by plugins)                                        */
/* ------------------------------------------------------------------------------------------ */

/** Tensor element types. The numbers are GGUF/ggml type ids, so they can be stored as read. */
typedef enum apr_tensor_type {
    APR_TYPE_F32 = 0,
    APR_TYPE_F16 = 1,
    APR_TYPE_Q4_0 = 2,  /**< blocks of 32: fp16 d, 16 bytes of 4-bit q;  x = d * (q - 8) */
    APR_TYPE_Q4_1 = 3,  /**< blocks of 32: fp16 d, fp16 m, 16 bytes of 4-bit q;  x = d * q + m */
    APR_TYPE_Q5_0 = 6,  /**< blocks of 32: fp16 d, 32 high bits, 16 bytes of low nibbles; x = d * (q - 16) */
    APR_TYPE_Q5_1 = 7,  /**< blocks of 32: fp16 d, fp16 m, 32 high bits, 16 bytes low nibbles; x = d * q + m */
    APR_TYPE_Q8_0 = 8,  /**< blocks of 32: fp16 d, 32 int8 q;  x = d * q */
    APR_TYPE_Q4_K = 12, /**< super-blocks of 256 (ggml's layout, 144 bytes) */
    APR_TYPE_Q5_K = 13, /**< super-blocks of 256 (ggml's layout, 176 bytes) */
    APR_TYPE_Q6_K = 14, /**< super-blocks of 256 (ggml's layout, 210 bytes) */
    APR_TYPE_BF16 = 30
} apr_tensor_type;

/** One tensor of the model, pointing into the core's read-only mapping of the model file. */
typedef struct apr_tensor_view {
    /** GGUF name, e.g. "blk.0.attn_q.weight" (see "Tensor names" below). Never NULL. */
    const char* name;
    /** Element type: an apr_tensor_type value (a GGUF type id). */
    uint32_t type;
    /** Number of used entries of `ne` (1 or 2 for every tensor the core passes today). */
    uint32_t n_dims;
    /** Extent of each dimension, innermost first as in GGUF: a matrix has ne[0] columns
     *  (the length of one row, the reduction dimension of a mat-vec) and ne[1] rows.
     *  Unused dimensions are 1. */
    uint64_t ne[4];
    /** Start of the tensor's bytes (rows are contiguous, each row is whole blocks). */
    const void* data;
    /** Number of bytes at `data`. */
    uint64_t n_bytes;
} apr_tensor_view;

/** Architecture families. They differ only in the details listed at each value. */
typedef enum apr_arch {
    APR_ARCH_LLAMA = 0, /**< Llama 2/3, Mistral, TinyLlama: RMSNorm, RoPE, GQA, SwiGLU */
    APR_ARCH_QWEN2 = 1, /**< as llama, plus biases on the q, k and v projections */
    APR_ARCH_QWEN3 = 2  /**< as llama, plus an RMSNorm over each head of q and of k before RoPE */
} apr_arch;

/** How RoPE pairs the dimensions of one head (head_dim = n_rot for every supported model). */
typedef enum apr_rope_type {
    APR_ROPE_NORM = 0, /**< pairs (2i, 2i+1) are rotated (llama) */
    APR_ROPE_NEOX = 1  /**< pairs (i, i + n_rot/2) are rotated (qwen2, qwen3) */
} apr_rope_type;

/**
 * Everything a backend needs to run the model. Built by the core from the model file; valid
 * from `open` until `close` returns.
 *
 * The forward pass, for a token t at position p (x is an n_embd vector):
 *   x = row t of token_embd.weight
 *   for each layer l:
 *     h = rmsnorm(x) * attn_norm                       (eps = rms_norm_eps)
 *     q = Wq h (+ bq), k = Wk h (+ bk), v = Wv h (+ bv)  (biases: qwen2)
 *     q, k per head: rmsnorm(.) * attn_q_norm / attn_k_norm (qwen3)
 *     q, k per head: RoPE at position p, theta_i = p * rope_freq_scale * base^(-2i/n_rot),
 *                    divided by rope_freqs[i] when that tensor exists (Llama 3 scaling)
 *     attention: query head h reads kv head h / (n_head / n_head_kv), causal,
 *                scores scaled by 1/sqrt(head_dim), softmax, weighted sum of v
 *     x = x + Wo · attention
 *     h = rmsnorm(x) * ffn_norm
 *     x = x + Wdown (silu(Wgate h) * (Wup h))
 *   logits = output.weight · (rmsnorm(x) * output_norm)
 */
typedef struct apr_model_view {
    /** sizeof(apr_model_view) as the core was built; read only fields it covers. */
    uint32_t struct_size;
    /** An apr_arch value. */
    uint32_t arch;
    /** The architecture's name as in the file ("llama", "qwen2", "qwen3"). */
    const char* arch_name;
    /** The model's name from its metadata, or its file name; for messages only. */
    const char* model_name;

    uint32_t n_vocab;         /**< rows of token_embd.weight and of output.weight */
    uint32_t n_ctx_train;     /**< context length the model was trained for */
    uint32_t n_embd;          /**< width of the residual stream */
    uint32_t n_layer;         /**< number of transformer blocks */
    uint32_t n_head;          /**< query heads */
    uint32_t n_head_kv;       /**< key/value heads (n_head is a multiple of it) */
    uint32_t head_dim;        /**< width of one head (q and k and v) */
    uint32_t n_ff;            /**< width of the feed-forward hidden layer */
    uint32_t n_rot;           /**< rotated dimensions per head (== head_dim for every supported model) */
    uint32_t rope_type;       /**< an apr_rope_type value */
    float rope_freq_base;     /**< RoPE base (10000 for Llama 2, 500000 for Llama 3) */
    float rope_freq_scale;    /**< linear RoPE scaling: positions are multiplied by it (1 = none) */
    float rms_norm_eps;       /**< epsilon inside every RMSNorm's square root */
    /** Non-zero when the file has no output.weight: the table then lists token_embd's data
     *  under the name "output.weight" too, so backends need no special case. */
    uint32_t tied_embeddings;

    /** Token ids the core may put in the gate sequence; backends need not use them. */
    int32_t bos_token_id;
    int32_t eos_token_id;

    /** The tensor table. Names follow GGUF ("Tensor names" below); order is unspecified. */
    uint32_t n_tensors;
    const apr_tensor_view* tensors;
} apr_model_view;

/*
 * Tensor names (ggml's convention; N is the layer index):
 *   token_embd.weight [n_embd, n_vocab]    output_norm.weight [n_embd]    output.weight [n_embd, n_vocab]
 *   rope_freqs.weight [n_rot/2]  (optional, F32: per-pair frequency divisors, Llama 3)
 *   blk.N.attn_norm.weight [n_embd]        blk.N.ffn_norm.weight [n_embd]
 *   blk.N.attn_q.weight [n_embd, n_head*head_dim]   blk.N.attn_q.bias [n_head*head_dim]       (qwen2)
 *   blk.N.attn_k.weight [n_embd, n_head_kv*head_dim] blk.N.attn_k.bias [n_head_kv*head_dim]   (qwen2)
 *   blk.N.attn_v.weight [n_embd, n_head_kv*head_dim] blk.N.attn_v.bias [n_head_kv*head_dim]   (qwen2)
 *   blk.N.attn_q_norm.weight [head_dim]    blk.N.attn_k_norm.weight [head_dim]             (qwen3)
 *   blk.N.attn_output.weight [n_head*head_dim, n_embd]
 *   blk.N.ffn_gate.weight [n_embd, n_ff]   blk.N.ffn_up.weight [n_embd, n_ff]   blk.N.ffn_down.weight [n_ff, n_embd]
 * Shapes are written as GGUF's ne: [row length, number of rows]. Norm weights and biases are F32.
 */

/** Finds a tensor of the view by name; NULL when the model has none of that name. */
static inline const apr_tensor_view* apr_model_find_tensor(const apr_model_view* model, const char* name) {
    uint32_t i;
    for (i = 0; i < model->n_tensors; ++i) {
        const char* a = model->tensors[i].name;
        const char* b = name;
        while (*a && *a == *b) { ++a; ++b; }
        if (*a == '\0' && *b == '\0') return &model->tensors[i];
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Probing and sessions                                                                       */
/* ------------------------------------------------------------------------------------------ */

/** What a probe found, filled by the plugin. The core zeroes it and sets struct_size first. */
typedef struct apr_device_info {
    /** Set by the core: sizeof(apr_device_info) as the core knows it. Write nothing past it. */
    uint32_t struct_size;
    /** Human description shown on the Backend line, e.g. "NVIDIA H200, Vulkan 1.3". NUL-terminated. */
    char description[256];
    /** Driver or runtime version text, e.g. "NVIDIA 580.65.06"; part of the parity cache key. */
    char driver[128];
    /** Memory usable for weights and caches, in bytes; 0 when unknown. */
    uint64_t memory_bytes;
} apr_device_info;

/** How the core wants a session set up. Filled by the core; struct_size says what is there. */
typedef struct apr_session_config {
    uint32_t struct_size;
    /** Longest sequence the session must hold in its KV cache (positions 0 .. n_ctx-1). */
    uint32_t n_ctx;
    /** CPU threads the backend may use; 0 means the backend chooses. */
    uint32_t n_threads;
} apr_session_config;

/** A plugin's per-model state (weights on the device, KV cache, scratch). Opaque to the core. */
typedef struct apr_session apr_session;

/** Descriptor flags. */
#define APR_BACKEND_FLAG_CPU 0x1u /**< computes on the host CPU; kept by `--no-gpu` */
#define APR_BACKEND_FLAG_GPU 0x2u /**< computes on an accelerator; never loaded under `--no-gpu` */

/** The exported descriptor. All strings are static, NUL-terminated and never NULL. */
typedef struct apr_backend_desc {
    /** Must be APR_BACKEND_ABI_VERSION. Checked before anything else is read. */
    uint32_t abi_version;
    /** sizeof(apr_backend_desc) as the plugin was built. Checked before anything else is used. */
    uint32_t struct_size;
    /** Short name: must equal the <name> of the file libapr_backend_<name>.so. */
    const char* name;
    /** Human name, e.g. "apr CUDA backend". */
    const char* display_name;
    /** The plugin's own version, e.g. "0.1.0". */
    const char* plugin_version;
    /** Default order among backends when the user gives none: higher is tried first
     *  (cuda 300, vulkan 200, cpu 100). */
    int32_t priority;
    /** APR_BACKEND_FLAG_* bits. */
    uint32_t flags;

    /** Looks for a device without touching any model. Fills `info` on success.
     *  Returns APR_ERR_NO_DEVICE (with last_error saying why) when there is none. */
    apr_status (*probe)(apr_device_info* info);

    /** Prepares `model` for stepping: uploads or maps weights, allocates the KV cache for
     *  `config->n_ctx` positions. `model` stays valid until close. On failure *out is NULL. */
    apr_status (*open)(const apr_model_view* model, const apr_session_config* config, apr_session** out);

    /** Frees everything the session holds. Accepts NULL. Never fails. */
    void (*close)(apr_session* session);

    /** The reason for the last failed call on the calling thread (probe, open, step), as
     *  static or thread-local text valid until the next call into the plugin; "" if none. */
    const char* (*last_error)(void);

    /* ---- Appended fields: read only when struct_size covers them (see "Growing the ABI"). ---- */

    /** Optional; NULL when the plugin does not offer it. Measures the memory bandwidth of the
     *  session's device the way apr-bench counts it: a device-to-device copy of a buffer far
     *  larger than any cache, (bytes read + bytes written) per second, the best of a few passes,
     *  written to *bytes_per_second. Called between steps; it may allocate scratch memory for
     *  the duration of the call and returns APR_ERR_OUT_OF_MEMORY when it cannot. apr-bench
     *  divides a generation's weight bytes per second by it (the bandwidth fraction). */
    apr_status (*measure_copy_rate)(apr_session* session, double* bytes_per_second);
} apr_backend_desc;

/** The descriptor's first layout (abi_version .. last_error): the smallest struct_size a core
 *  accepts. A plugin built against an older header has this size and works unchanged. */
#define APR_BACKEND_DESC_MIN_SIZE (offsetof(apr_backend_desc, measure_copy_rate))

/** Whether descriptor `d` has the appended field `field` (its struct_size covers it). */
#define APR_BACKEND_DESC_HAS(d, field) \
    ((d)->struct_size >= offsetof(apr_backend_desc, field) + sizeof((d)->field))

/** Step flags. */
#define APR_STEP_LOGITS_ALL 0x1u /**< write logits for every token of the run, not just the last */

/**
 * Advances `session` over `n_tokens` tokens placed at positions pos .. pos+n_tokens-1, and
 * writes their logits.
 *  - One token is a decode step; more are a prefill. Both use the same call.
 *  - `pos` may be lower than the number of positions already cached: the cache is first
 *    rewound to `pos` (everything from `pos` on is forgotten). It must not be higher.
 *  - pos + n_tokens must not exceed the session's n_ctx (APR_ERR_INVALID_ARGUMENT otherwise).
 *  - `logits` receives n_vocab floats for the last token, or n_tokens * n_vocab floats (row per
 *    token, in order) with APR_STEP_LOGITS_ALL.
 * Exported as the symbol "apr_backend_step".
 */
typedef apr_status (*apr_backend_step_fn)(apr_session* session, const int32_t* tokens, uint32_t n_tokens,
                                          uint32_t pos, uint32_t flags, float* logits);

/** The two symbols a plugin defines (with APR_BACKEND_EXPORT, C linkage). */
APR_BACKEND_EXPORT extern const apr_backend_desc apr_backend_descriptor;
APR_BACKEND_EXPORT apr_status apr_backend_step(apr_session* session, const int32_t* tokens, uint32_t n_tokens,
                                               uint32_t pos, uint32_t flags, float* logits);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* APR_BACKEND_H */
