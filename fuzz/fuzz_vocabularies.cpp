#include "fuzz_vocabularies.hpp"

#include "model/gguf_writer.hpp"
#include "model/synthetic_model.hpp"

namespace apr::fuzz {

namespace {

constexpr int32_t kNormal = 1, kControl = 3;

std::vector<uint8_t> spm_gguf() {
    SyntheticVocab vocab = synthetic_vocab(512);
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string_array("tokenizer.ggml.tokens", vocab.tokens);
    std::vector<double> scores(vocab.scores.begin(), vocab.scores.end());
    w.add_float_array("tokenizer.ggml.scores", GgufType::FLOAT32, scores);
    std::vector<int64_t> types(vocab.types.begin(), vocab.types.end());
    w.add_int_array("tokenizer.ggml.token_type", GgufType::INT32, types);
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);
    return w.to_bytes();
}

// Every single byte (GPT-2's byte-to-unicode spelling) plus a few merges, so any input text
// has a tokenization, and special tokens that the partitioner must find in running text.
std::vector<uint8_t> bpe_gguf(const std::string& pre) {
    std::vector<std::string> tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    std::vector<int64_t> types = {kControl, kControl, kControl};
    // Bytes that GPT-2 shows as themselves, then the rest mapped to U+0100 onwards.
    auto utf8 = [](uint32_t cp) {
        std::string s;
        if (cp < 0x80) {
            s += char(cp);
        } else {
            s += char(0xC0 | (cp >> 6));
            s += char(0x80 | (cp & 0x3F));
        }
        return s;
    };
    uint32_t next_extra = 0x100;
    for (uint32_t b = 0; b < 256; ++b) {
        bool shown = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        tokens.push_back(utf8(shown ? b : next_extra++));
        types.push_back(kNormal);
    }
    const std::vector<std::string> merges = {"h e", "l l", "he ll", "hell o", "\xC4\xA0 w", "o r", "\xC4\xA0w or",
                                             "l d", "\xC4\xA0wor ld", "\xC4\xA0 t", "\xC4\xA0t he"};
    for (const auto& m : merges) {
        std::string joined = m.substr(0, m.find(' ')) + m.substr(m.find(' ') + 1);
        bool seen = false;
        for (const auto& t : tokens) seen = seen || t == joined;
        if (!seen) {
            tokens.push_back(joined);
            types.push_back(kNormal);
        }
    }
    GgufWriter w;
    w.add_string("general.architecture", pre == "qwen2" ? "qwen2" : "llama");
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", pre);
    w.add_string_array("tokenizer.ggml.tokens", tokens);
    w.add_int_array("tokenizer.ggml.token_type", GgufType::INT32, types);
    w.add_string_array("tokenizer.ggml.merges", merges);
    w.add_u32("tokenizer.ggml.bos_token_id", 0);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);
    return w.to_bytes();
}

}  // namespace

std::vector<NamedVocabulary> fuzz_vocabularies() {
    return {{"spm", spm_gguf()},
            {"bpe-gpt2", bpe_gguf("gpt2")},
            {"bpe-llama3", bpe_gguf("llama-bpe")},
            {"bpe-qwen2", bpe_gguf("qwen2")}};
}

}  // namespace apr::fuzz
