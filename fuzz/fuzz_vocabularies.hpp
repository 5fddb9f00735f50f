// The fixed vocabularies the tokenizer fuzzer runs on, as GGUF bytes written by the project's
// own GgufWriter: the synthetic models' SentencePiece vocabulary, and a small byte-level BPE
// vocabulary under each pre-tokenizer family. The seed generator writes the same files as
// seeds for the GGUF fuzzer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace apr::fuzz {

struct NamedVocabulary {
    std::string name;            // "spm", "bpe-gpt2", "bpe-llama3", "bpe-qwen2"
    std::vector<uint8_t> gguf;   // a complete GGUF file holding only tokenizer metadata
};

std::vector<NamedVocabulary> fuzz_vocabularies();

}  // namespace apr::fuzz
