#include "model/synthetic_model.hpp"

// Same bits on every machine: no fused multiply-adds that one compiler/target would use and
// another would not (GCC in ISO C++ mode never contracts; clang needs to be told).
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#include <cmath>
#include <cstdio>
#include <unordered_set>

#include "model/ggml_type.hpp"
#include "model/gguf_writer.hpp"

namespace apr {

namespace {

// ---- a portable PRNG -------------------------------------------------------------------------

// splitmix64's output function: a bijective mix of a 64-bit value.
uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    return h;
}

// Natural log from frexp (exact) and the atanh series in + - * / only, so that it gives the
// same bits on every IEEE machine, unlike the C library's log.
double portable_log(double x) {
    int e;
    double m = std::frexp(x, &e);  // x = m * 2^e, m in [0.5, 1)
    if (m < 0.70710678118654752) {
        m *= 2;
        --e;
    }
    // ln m = 2 atanh(z), z = (m-1)/(m+1) in [-0.172, 0.172]: seven odd terms leave a relative
    // error below 1e-12, far under the float the samples end up as.
    const double z = (m - 1) / (m + 1), z2 = z * z;
    double sum = 0;
    for (int k = 13; k >= 1; k -= 2) sum = sum * z2 + 1.0 / k;
    return 2 * z * sum + e * 0.69314718055994530942;
}

// N(0, 1) samples for one row, seeded by (seed, tensor, row): Marsaglia's polar method over
// splitmix64. sqrt is exact in IEEE arithmetic, so every sample is portable.
class RowNormal {
public:
    RowNormal(uint64_t seed, uint64_t tensor_hash, uint64_t row) : state_(mix64(mix64(mix64(seed) ^ tensor_hash) ^ row)) {}

    double next() {
        if (have_spare_) {
            have_spare_ = false;
            return spare_;
        }
        double u, v, s;
        do {
            // One 64-bit draw gives both coordinates, 32 bits each.
            state_ += 0x9e3779b97f4a7c15ull;
            const uint64_t r = mix64(state_);
            u = double(uint32_t(r)) * 0x1.0p-31 - 1;
            v = double(uint32_t(r >> 32)) * 0x1.0p-31 - 1;
            s = u * u + v * v;
        } while (s >= 1 || s == 0);
        const double f = std::sqrt(-2 * portable_log(s) / s);
        spare_ = v * f;
        have_spare_ = true;
        return u * f;
    }

private:
    uint64_t state_;
    bool have_spare_ = false;
    double spare_ = 0;
};

// ---- the vocabulary --------------------------------------------------------------------------

constexpr const char* kWords[] = {
    "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on", "are", "with", "as",
    "I", "his", "they", "be", "at", "one", "have", "this", "from", "or", "had", "by", "not", "word", "but", "what",
    "some", "we", "can", "out", "other", "were", "all", "there", "when", "up", "use", "your", "how", "said", "an",
    "each", "she", "which", "do", "their", "time", "if", "will", "way", "about", "many", "then", "them", "write",
    "would", "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look", "more", "day",
    "could", "go", "come", "did", "number", "sound", "no", "most", "people", "my", "over", "know", "water", "than",
    "call", "first", "who", "may", "down", "side", "been", "now", "find", "any", "new", "work", "part", "take",
    "get", "place", "made", "live", "where", "after", "back", "little", "only", "round", "man", "year", "came",
    "show", "every", "good", "me", "give", "our", "under", "name", "very", "through", "just", "form", "sentence",
    "great", "think", "say", "help", "low", "line", "differ", "turn", "cause", "much", "mean", "before", "move",
    "right", "boy", "old", "too", "same", "tell", "does", "set", "three", "want", "air", "well", "also", "play",
    "small", "end", "put", "home", "read", "hand", "port", "large", "spell", "add", "even", "land", "here", "must",
    "big", "high", "such", "follow", "act", "why", "ask", "men", "change", "went", "light", "kind", "off", "need",
    "house", "picture", "try", "us", "again", "animal", "point", "mother", "world", "near", "build", "self",
    "earth", "father", "head", "stand", "own", "page", "should", "country", "found", "answer", "school", "grow",
    "study", "still", "learn", "plant", "cover", "food", "sun", "four", "between", "state", "keep", "eye", "never",
    "last", "let", "thought", "city", "tree", "cross", "farm", "hard", "start", "might", "story", "saw", "far",
    "sea", "draw", "left", "late", "run", "while", "press", "close", "night", "real", "life", "few", "north",
    "model", "token", "backend", "language", "machine", "Hello", "The", "It", "In", "This", "A",
};

const std::string kSpace = "\xe2\x96\x81";  // U+2581, SentencePiece's space marker

}  // namespace

SyntheticVocab synthetic_vocab(uint32_t n_vocab) {
    if (n_vocab < 259) throw SyntheticSpecError("n_vocab", std::to_string(n_vocab) + " is below the 259 special and byte tokens");
    SyntheticVocab v;
    v.tokens.reserve(n_vocab);
    auto add = [&](const std::string& t, float score, int32_t type) {
        v.tokens.push_back(t);
        v.scores.push_back(score);
        v.types.push_back(type);
    };
    add("<unk>", 0, 2);
    add("<s>", 0, 3);
    add("</s>", 0, 3);
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        add(name, 0, 6);
    }
    // Pieces in rank order; generated lazily so a 32000-token vocabulary costs nothing extra.
    std::unordered_set<std::string> seen(v.tokens.begin(), v.tokens.end());
    uint32_t rank = 0;
    auto piece = [&](const std::string& p) {
        if (v.tokens.size() >= n_vocab || !seen.insert(p).second) return;
        add(p, -float(rank++), 1);
    };
    piece(kSpace);
    for (const char* w : kWords) piece(kSpace + w);
    for (char c = 'a'; c <= 'z'; ++c) piece(kSpace + std::string(1, c));
    for (char c = 'a'; c <= 'z'; ++c) piece(std::string(1, c));
    for (char c = 'A'; c <= 'Z'; ++c) piece(std::string(1, c));
    for (char c = '0'; c <= '9'; ++c) piece(std::string(1, c));
    for (const char* p : {".", ",", "!", "?", "'", "-", ":", ";", "(", ")"}) piece(p);
    for (const char* w : kWords) piece(w);
    for (char a = 'a'; a <= 'z' && v.tokens.size() < n_vocab; ++a)
        for (char b = 'a'; b <= 'z'; ++b) {
            piece(kSpace + a + b);
            piece(std::string{a, b});
        }
    for (char a = 'a'; a <= 'z' && v.tokens.size() < n_vocab; ++a)
        for (char b = 'a'; b <= 'z' && v.tokens.size() < n_vocab; ++b)
            for (char c = 'a'; c <= 'z'; ++c) {
                piece(kSpace + a + b + c);
                piece(std::string{a, b, c});
            }
    // 26^3 * 2 + the rest exceeds any vocabulary below ~36000; beyond, numbered pieces fill up.
    for (uint32_t i = 0; v.tokens.size() < n_vocab; ++i) piece(kSpace + "w" + std::to_string(i));
    return v;
}

SyntheticModelSpec synthetic_preset(const std::string& shape) {
    SyntheticModelSpec s;
    if (shape == "tiny") return s;
    if (shape == "1b") {
        s.n_vocab = 32000, s.n_embd = 2048, s.n_layer = 16, s.n_head = 16, s.n_head_kv = 4, s.n_ff = 8192, s.n_ctx = 2048;
        s.width_scaled_init = true;
        return s;
    }
    if (shape == "7b") {
        s.n_vocab = 32000, s.n_embd = 4096, s.n_layer = 32, s.n_head = 32, s.n_head_kv = 32, s.n_ff = 11008, s.n_ctx = 4096;
        s.width_scaled_init = true;
        return s;
    }
    throw SyntheticSpecError("shape", "unknown shape '" + shape + "' (expected tiny, 1b or 7b)");
}

namespace {

void check_rows(const char* field, uint32_t type, uint32_t row_length, const char* what) {
    const auto t = ggml_type_traits(type);
    if (!t) throw SyntheticSpecError(field, ggml_type_name(type) + " is not supported");
    if (row_length % t->block_size != 0)
        throw SyntheticSpecError(field, std::string(t->name) + " needs row lengths that are multiples of " +
                                            std::to_string(t->block_size) + ", but " + what + " is " +
                                            std::to_string(row_length));
}

}  // namespace

void validate_synthetic_spec(const SyntheticModelSpec& s) {
    if (s.arch != "llama" && s.arch != "qwen2" && s.arch != "qwen3")
        throw SyntheticSpecError("arch", "unknown architecture '" + s.arch + "' (expected llama, qwen2 or qwen3)");
    if (s.n_vocab < 259) throw SyntheticSpecError("n_vocab", std::to_string(s.n_vocab) + " is below the 259 special and byte tokens");
    if (s.n_vocab > (1u << 24)) throw SyntheticSpecError("n_vocab", std::to_string(s.n_vocab) + " is above 2^24");
    const std::pair<const char*, uint32_t> sizes[] = {{"n_embd", s.n_embd}, {"n_layer", s.n_layer}, {"n_head", s.n_head},
                                                      {"n_head_kv", s.n_head_kv}, {"n_ff", s.n_ff}, {"n_ctx", s.n_ctx}};
    for (const auto& [name, value] : sizes)
        if (value == 0 || value > (1u << 20)) throw SyntheticSpecError(name, std::to_string(value) + " is not in 1..2^20");
    if (s.n_embd % s.n_head != 0)
        throw SyntheticSpecError("n_head", "n_embd " + std::to_string(s.n_embd) + " is not a multiple of n_head " +
                                               std::to_string(s.n_head));
    if ((s.n_embd / s.n_head) % 2 != 0)
        throw SyntheticSpecError("n_head", "head_dim " + std::to_string(s.n_embd / s.n_head) + " is odd");
    if (s.n_head % s.n_head_kv != 0)
        throw SyntheticSpecError("n_head_kv", "n_head " + std::to_string(s.n_head) + " is not a multiple of n_head_kv " +
                                                  std::to_string(s.n_head_kv));
    if (!(s.rope_freq_base > 1 && s.rope_freq_base < 1e12f))
        throw SyntheticSpecError("rope_freq_base", std::to_string(s.rope_freq_base) + " is out of range");
    check_rows("weight_type", s.weight_type, s.n_embd, "n_embd");
    check_rows("weight_type", s.weight_type, s.n_ff, "n_ff");
    check_rows("embd_type", s.embd_type.value_or(s.weight_type), s.n_embd, "n_embd");
    if (!s.tied_embeddings) check_rows("output_type", s.output_type.value_or(s.weight_type), s.n_embd, "n_embd");
}

void write_synthetic_model(const std::string& path, const SyntheticModelSpec& s, unsigned n_threads) {
    validate_synthetic_spec(s);
    const uint32_t head_dim = s.n_embd / s.n_head;
    const bool qwen = s.arch != "llama";
    const std::string a = s.arch + ".";

    GgufWriter w;
    w.add_string("general.architecture", s.arch);
    w.add_string("general.name", "apr synthetic " + s.arch);
    w.add_u32(a + "context_length", s.n_ctx);
    w.add_u32(a + "embedding_length", s.n_embd);
    w.add_u32(a + "block_count", s.n_layer);
    w.add_u32(a + "feed_forward_length", s.n_ff);
    w.add_u32(a + "attention.head_count", s.n_head);
    w.add_u32(a + "attention.head_count_kv", s.n_head_kv);
    if (s.arch == "qwen3") {
        w.add_u32(a + "attention.key_length", head_dim);
        w.add_u32(a + "attention.value_length", head_dim);
    }
    w.add_f32(a + "attention.layer_norm_rms_epsilon", qwen ? 1e-6f : 1e-5f);
    w.add_f32(a + "rope.freq_base", s.rope_freq_base);
    w.add_u32(a + "rope.dimension_count", head_dim);

    const SyntheticVocab vocab = synthetic_vocab(s.n_vocab);
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string_array("tokenizer.ggml.tokens", vocab.tokens);
    w.add_float_array("tokenizer.ggml.scores", GgufType::FLOAT32, std::vector<double>(vocab.scores.begin(), vocab.scores.end()));
    w.add_int_array("tokenizer.ggml.token_type", GgufType::INT32, std::vector<int64_t>(vocab.types.begin(), vocab.types.end()));
    w.add_u32("tokenizer.ggml.unknown_token_id", 0);
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);
    w.add_bool("tokenizer.ggml.add_bos_token", true);
    w.add_bool("tokenizer.ggml.add_eos_token", false);

    // Every value of a tensor is scale * N(0,1) + shift, drawn row by row.
    const uint64_t seed = s.seed;
    auto random = [&](const std::string& name, uint32_t type, std::vector<uint64_t> ne, float scale, float shift) {
        const uint64_t h = fnv1a(name);
        const uint64_t row_len = ne[0];
        w.add_tensor_rows(name, type, ne, [seed, h, row_len, scale, shift](uint64_t row, float* out) {
            RowNormal g(seed, h, row);
            for (uint64_t i = 0; i < row_len; ++i) out[i] = float(shift + scale * g.next());
        });
    };
    auto matrix = [&](const std::string& name, uint32_t type, uint64_t cols, uint64_t rows) {
        const float std = s.width_scaled_init ? 0.02f * std::sqrt(256.0f / float(cols)) : 0.02f;
        random(name, type, {cols, rows}, std, 0.0f);
    };
    auto norm = [&](const std::string& name, uint64_t n) { random(name, APR_TYPE_F32, {n}, 0.1f, 1.0f); };
    auto bias = [&](const std::string& name, uint64_t n) { random(name, APR_TYPE_F32, {n}, 0.02f, 0.0f); };

    const uint64_t q_dim = uint64_t(s.n_head) * head_dim, kv_dim = uint64_t(s.n_head_kv) * head_dim;
    matrix("token_embd.weight", s.embd_type.value_or(s.weight_type), s.n_embd, s.n_vocab);
    if (s.llama3_rope_freqs) {
        // Llama 3.1's frequency divisors (factor 8, low/high frequency factors 1 and 4, original
        // context 8192): long wavelengths are slowed 8x, short ones kept, a smooth blend between.
        std::vector<float> divisors(head_dim / 2);
        const double factor = 8, low = 1, high = 4, original = 8192, pi = 3.14159265358979323846;
        for (uint32_t i = 0; i < head_dim / 2; ++i) {
            const double freq = std::pow(double(s.rope_freq_base), -2.0 * i / head_dim);
            const double wavelen = 2 * pi / freq;
            double d = 1;
            if (wavelen > original / low) {
                d = factor;
            } else if (wavelen >= original / high) {
                const double smooth = (original / wavelen - low) / (high - low);
                d = 1 / ((1 - smooth) / factor + smooth);
            }
            divisors[i] = float(d);
        }
        w.add_tensor_f32("rope_freqs.weight", APR_TYPE_F32, {head_dim / 2}, divisors);
    }
    for (uint32_t l = 0; l < s.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        norm(b + "attn_norm.weight", s.n_embd);
        matrix(b + "attn_q.weight", s.weight_type, s.n_embd, q_dim);
        matrix(b + "attn_k.weight", s.weight_type, s.n_embd, kv_dim);
        matrix(b + "attn_v.weight", s.weight_type, s.n_embd, kv_dim);
        if (s.arch == "qwen2") {
            bias(b + "attn_q.bias", q_dim);
            bias(b + "attn_k.bias", kv_dim);
            bias(b + "attn_v.bias", kv_dim);
        }
        if (s.arch == "qwen3") {
            norm(b + "attn_q_norm.weight", head_dim);
            norm(b + "attn_k_norm.weight", head_dim);
        }
        matrix(b + "attn_output.weight", s.weight_type, q_dim, s.n_embd);
        norm(b + "ffn_norm.weight", s.n_embd);
        matrix(b + "ffn_gate.weight", s.weight_type, s.n_embd, s.n_ff);
        matrix(b + "ffn_up.weight", s.weight_type, s.n_embd, s.n_ff);
        matrix(b + "ffn_down.weight", s.weight_type, s.n_ff, s.n_embd);
    }
    norm("output_norm.weight", s.n_embd);
    if (!s.tied_embeddings) matrix("output.weight", s.output_type.value_or(s.weight_type), s.n_embd, s.n_vocab);

    w.write(path, n_threads);
}

}  // namespace apr
