// Writes the fuzzers' seed corpora at build/test time (never committed as binary):
//   <out>/gguf/       small synthetic models (each architecture, several weight types, tied
//                     embeddings, Llama 3 rope_freqs) and the tokenizer-only vocabulary files
//   <out>/tokenizer/  texts, each prefixed by the byte that picks vocabulary and flags
// Usage: apr_fuzz_seeds <out-dir>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz_vocabularies.hpp"
#include "model/synthetic_model.hpp"

namespace fs = std::filesystem;

namespace {

void write_bytes(const fs::path& path, const void* data, size_t size) {
    std::ofstream out(path, std::ios::binary);
    out.write(static_cast<const char*>(data), std::streamsize(size));
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

void write_model_seeds(const fs::path& dir) {
    struct Seed {
        const char* name;
        const char* arch;
        uint32_t type;
        uint32_t n_embd;
        bool tied, rope_freqs;
    };
    // Small enough that libFuzzer's mutations reach every part of the file; K-quant rows need
    // 256 elements.
    const Seed seeds[] = {
        {"llama-f32", "llama", APR_TYPE_F32, 32, false, false},
        {"llama-f16-tied", "llama", APR_TYPE_F16, 32, true, false},
        {"llama-q8_0-rope-freqs", "llama", APR_TYPE_Q8_0, 32, false, true},
        {"qwen2-q4_0", "qwen2", APR_TYPE_Q4_0, 32, false, false},
        {"qwen3-bf16", "qwen3", APR_TYPE_BF16, 32, false, false},
        {"llama-q4_k", "llama", APR_TYPE_Q4_K, 256, false, false},
    };
    for (const auto& s : seeds) {
        apr::SyntheticModelSpec spec;
        spec.arch = s.arch;
        spec.n_vocab = 260;
        spec.n_embd = s.n_embd;
        spec.n_layer = 1;
        spec.n_head = 2;
        spec.n_head_kv = 1;
        spec.n_ff = s.n_embd == 256 ? 256 : 64;
        spec.n_ctx = 32;
        spec.weight_type = s.type;
        spec.output_type = s.type == APR_TYPE_Q4_K ? APR_TYPE_Q8_0 : s.type;
        spec.tied_embeddings = s.tied;
        spec.llama3_rope_freqs = s.rope_freqs;
        apr::write_synthetic_model((dir / (std::string(s.name) + ".gguf")).string(), spec, 1);
    }
    for (const auto& v : apr::fuzz::fuzz_vocabularies())
        write_bytes(dir / ("vocab-" + v.name + ".gguf"), v.gguf.data(), v.gguf.size());
}

// The whole literal, NULs included.
template <size_t N>
std::string with_nuls(const char (&literal)[N]) {
    return std::string(literal, N - 1);
}

void write_text_seeds(const fs::path& dir) {
    const std::vector<std::string> texts = {
        "Hello world",
        " leading space and  double  spaces",
        "The quick brown fox jumps over the lazy dog.\n\nNew paragraph\ttab",
        "<s>control</s> <|im_start|>user<|im_end|><|endoftext|>",
        "numbers 1234567 3.14159 and punctuation !?;:'\"()[]{}",
        "contractions: I'm, you're, they'll, it's, we've, DON'T",
        "\xC3\xA9t\xC3\xA9 na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x98\x80 emoji",
        with_nuls("bad utf8 \xC3\x28 \xF0\x28\x8C\xBC \xFF\xFE"),
        with_nuls("nul\0inside"),
    };
    int n = 0;
    for (const auto& text : texts) {
        for (uint8_t selector : {0x00, 0x01, 0x02, 0x03, 0x30, 0x31, 0x32, 0x33}) {
            std::string input = std::string(1, char(selector)) + text;
            char name[32];
            std::snprintf(name, sizeof(name), "text-%03d", n++);
            write_bytes(dir / name, input.data(), input.size());
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <out-dir>\n", argv[0]);
        return 2;
    }
    try {
        fs::path out = argv[1];
        fs::create_directories(out / "gguf");
        fs::create_directories(out / "tokenizer");
        write_model_seeds(out / "gguf");
        write_text_seeds(out / "tokenizer");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "apr_fuzz_seeds: %s\n", e.what());
        return 1;
    }
    return 0;
}
