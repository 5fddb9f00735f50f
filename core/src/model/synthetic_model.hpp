// Synthetic models: seeded random weights in the oracle set's distribution, a SentencePiece-
// style vocabulary, any supported architecture and weight type, written by GgufWriter. They
// are what tests and benchmarks run when no real model is at hand. The weights come from a
// PRNG written here (splitmix64, Marsaglia's polar method with a log built from + - * /), so
// the same spec gives byte-identical files on every machine, and from one row at a time, so a
// 7B model streams to disk in bounded memory.
#pragma once

#include <apr/backend.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace apr {

struct SyntheticModelSpec {
    std::string arch = "llama";  // llama | qwen2 | qwen3
    uint32_t n_vocab = 512, n_embd = 128, n_layer = 2, n_head = 4, n_head_kv = 2, n_ff = 384, n_ctx = 256;
    uint32_t weight_type = APR_TYPE_F32;  // the matrices' type (an apr_tensor_type)
    std::optional<uint32_t> output_type;  // output.weight's type; default weight_type
    std::optional<uint32_t> embd_type;    // token_embd.weight's type; default weight_type
    bool tied_embeddings = false;         // no output.weight
    float rope_freq_base = 10000;
    uint64_t seed = 1;
    bool llama3_rope_freqs = false;       // add rope_freqs.weight with Llama 3's frequency divisors
    // Every matrix drawn with std 0.02 * sqrt(256 / row length) instead of 0.02: the gain the
    // oracle-shaped tiny models have (n_embd 256), at any width. With a fixed 0.02, a wide model
    // (n_embd 4096: a gain of 1.3 per matrix, 2.1 for ffn_down) is chaotic — a one-ulp
    // difference in any activation grows to whole-logit differences by the output, which no
    // trained model does and which would make any two correct backends disagree. The 1b and 7b
    // presets use it; tiny (the oracle set's own distribution) does not.
    bool width_scaled_init = false;
};

// A spec that cannot be written: `field` names the SyntheticModelSpec member ("n_embd",
// "weight_type", ...) so a command line can point at its flag.
class SyntheticSpecError : public std::invalid_argument {
public:
    SyntheticSpecError(std::string field, const std::string& problem)
        : std::invalid_argument(field + ": " + problem), field_(std::move(field)) {}
    const std::string& field() const { return field_; }

private:
    std::string field_;
};

// The named shapes: "tiny" (the defaults above), "1b" (n_vocab 32000, n_embd 2048, 16 layers,
// 16 heads, 4 kv heads, n_ff 8192) and "7b" (n_vocab 32000, n_embd 4096, 32 layers, 32 heads,
// 32 kv heads, n_ff 11008). Throws SyntheticSpecError("shape") for any other name.
SyntheticModelSpec synthetic_preset(const std::string& shape);

// Throws SyntheticSpecError when the spec is not writable (unknown arch, zero sizes, n_head not
// a multiple of n_head_kv, odd head_dim, n_vocab below the 259 special and byte tokens, or a
// row length that is not whole blocks of its tensor's type — K-quants need multiples of 256).
void validate_synthetic_spec(const SyntheticModelSpec& spec);

// The vocabulary every synthetic model carries: <unk> <s> </s>, the 256 byte tokens, then
// "▁"-prefixed common English words, single letters and letter pairs, up to n_vocab pieces.
struct SyntheticVocab {
    std::vector<std::string> tokens;
    std::vector<float> scores;    // 0 for special and byte tokens, -rank for pieces
    std::vector<int32_t> types;   // 1 normal, 2 unknown, 3 control, 6 byte
};
SyntheticVocab synthetic_vocab(uint32_t n_vocab);

// Validates and writes the model (n_threads 0 = up to 8 hardware threads; the file does not
// depend on it).
void write_synthetic_model(const std::string& path, const SyntheticModelSpec& spec, unsigned n_threads = 0);

}  // namespace apr
