// libFuzzer target: the GGUF reader and model recognition on arbitrary bytes.
// A bad file must end in GgufError or ModelError (or TokenizerError for its vocabulary), never a
// crash, a sanitizer report, or an out-of-bounds read of the input. The input buffer libFuzzer
// hands us is exactly `size` bytes on the heap, so AddressSanitizer flags any read past the end,
// including a tensor whose data the reader wrongly believed to be inside the file.
#include <cstddef>
#include <cstdint>
#include <span>

#include "model/gguf_file.hpp"
#include "model/model.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/tokenizer_error.hpp"

namespace {

// Reads the first and last byte of every tensor the reader accepted: each must lie inside the
// input. The volatile sum keeps the reads from being optimised away.
void touch_tensor_data(const apr::GgufFile& file) {
    volatile uint8_t sink = 0;
    for (const auto& t : file.tensors()) {
        if (t.n_bytes == 0) continue;
        sink = sink + t.data[0] + t.data[t.n_bytes - 1];
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::unique_ptr<apr::GgufFile> file;
    try {
        file = apr::GgufFile::from_memory(std::span<const uint8_t>(data, size), "fuzz-input");
    } catch (const apr::GgufError&) {
        return 0;
    }
    touch_tensor_data(*file);
    try {
        (void)apr::Tokenizer::from_gguf(*file);
    } catch (const apr::TokenizerError&) {
    } catch (const apr::GgufError&) {
    }
    try {
        (void)apr::Model::from_gguf(std::move(file));
    } catch (const apr::GgufError&) {
    } catch (const apr::ModelError&) {
    }
    return 0;
}
