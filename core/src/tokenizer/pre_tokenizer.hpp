// Pre-tokenizers of byte-level BPE vocabularies: the regular expressions that cut text into
// words before BPE merges run inside each word, chosen by the GGUF key tokenizer.ggml.pre.
//
// The expressions and the way they are applied are llama.cpp's: a pre-tokenizer is a list of
// expressions applied in turn; each one re-cuts every piece the previous ones produced, and the
// stretches between its matches stay pieces of their own (nothing is dropped). Unicode classes
// (\p{L}, \p{N}, \s, ...) are PCRE2's with PCRE2_UCP, never hand-written tables.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace apr {

class PreTokenizer {
public:
    // The pre-tokenizer a vocabulary names. Known names: "default" (and an empty name, which
    // llama.cpp also maps to it), "gpt2"/"gpt-2", "llama3"/"llama-bpe"/"llama-v3", "qwen2",
    // "deepseek-llm", "deepseek-coder". Throws TokenizerError naming an unknown one.
    static std::unique_ptr<PreTokenizer> for_name(std::string_view name);

    // The names for_name accepts, for error messages and tests.
    static const std::vector<std::string>& known_names();

    ~PreTokenizer();
    PreTokenizer(const PreTokenizer&) = delete;
    PreTokenizer& operator=(const PreTokenizer&) = delete;

    // Cuts `text` into words whose concatenation is `text` (after bytes that are not valid UTF-8
    // have been replaced by U+FFFD, as llama.cpp does before splitting). Empty text gives none.
    std::vector<std::string> split(std::string_view text) const;

    const std::string& name() const { return name_; }

private:
    struct Expression;
    PreTokenizer(std::string name, const std::vector<std::string>& patterns);

    std::string name_;
    std::vector<std::unique_ptr<Expression>> expressions_;
};

}  // namespace apr
