// Trained weights -> GGUF: the export step of a model trained outside apr (the default model,
// tools/train-default-model). A training script writes a plain folder and this writes the GGUF
// with the project's own GgufWriter, quantizing the matrices, so no second GGUF writer exists.
//
// The folder ("apr weights folder"):
//   hparams.txt  "key value" lines ('#' starts a comment): name, n_vocab, n_embd, n_layer, n_head,
//                n_head_kv, n_ff, n_ctx, rope_freq_base, rms_norm_eps
//   tensors.txt  "name ne0 [ne1 ...]" lines, GGUF names and shapes (ne0 = row length), in the
//                order their data follows in weights.bin
//   weights.bin  every tensor's values as little-endian f32, back to back
//   tokens.txt   the byte-level BPE vocabulary, one token per line, id = line number; ids 0 and
//                1 are <s> (BOS) and </s> (EOS)
//   merges.txt   the BPE merges in rank order, "left right" per line
// The model is a llama architecture with tied embeddings when tensors.txt has no output.weight.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace apr {

// A folder that cannot be imported: the message names the file and, where it applies, the line.
class WeightsImportError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct WeightsImportOptions {
    uint32_t matrix_type;            // the type of every 2-D tensor (1-D tensors stay f32)
    std::string pre_tokenizer = "qwen2";  // tokenizer.ggml.pre: the expression the BPE was trained with
    std::string license;             // general.license, when not empty
    std::string source;              // general.source.url-like free text (general.description)
};

// Reads `folder`, checks every count and size, and writes `out_path`. Throws WeightsImportError.
void import_trained_weights(const std::string& folder, const std::string& out_path, const WeightsImportOptions& options);

}  // namespace apr
