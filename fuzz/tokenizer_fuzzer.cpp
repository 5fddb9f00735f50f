// libFuzzer target: the tokenizer on arbitrary text. The first input byte picks the vocabulary
// (the synthetic SentencePiece one or a byte-level BPE one under each pre-tokenizer) and the
// add_special / parse_special flags; the rest is the text, which need not be valid UTF-8.
// Checked: encode never crashes or throws, every id is inside the vocabulary, and decode and
// token_to_piece accept every id encode produced.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <vector>

#include "fuzz_vocabularies.hpp"
#include "model/gguf_file.hpp"
#include "tokenizer/tokenizer.hpp"

namespace {

struct LoadedVocabulary {
    std::vector<uint8_t> bytes;  // GgufFile::from_memory keeps pointing into it
    std::unique_ptr<apr::GgufFile> file;
    std::unique_ptr<apr::Tokenizer> tokenizer;
};

std::vector<LoadedVocabulary>& vocabularies() {
    static std::vector<LoadedVocabulary> loaded = [] {
        std::vector<LoadedVocabulary> out;
        for (auto& v : apr::fuzz::fuzz_vocabularies()) {
            LoadedVocabulary l;
            l.bytes = std::move(v.gguf);
            l.file = apr::GgufFile::from_memory(l.bytes, v.name);
            l.tokenizer = apr::Tokenizer::from_gguf(*l.file);
            out.push_back(std::move(l));
        }
        return out;
    }();
    return loaded;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    auto& vocabs = vocabularies();
    const uint8_t selector = data[0];
    const apr::Tokenizer& tok = *vocabs[selector % vocabs.size()].tokenizer;
    const bool add_special = (selector >> 4) & 1;
    const bool parse_special = (selector >> 5) & 1;
    std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

    std::vector<int32_t> ids = tok.encode(text, add_special, parse_special);
    for (int32_t id : ids) {
        if (id < 0 || uint32_t(id) >= tok.n_vocab()) std::abort();
        (void)tok.token_to_piece(id, true);
    }
    (void)tok.decode(ids, true);
    (void)tok.decode(ids, false);
    return 0;
}
