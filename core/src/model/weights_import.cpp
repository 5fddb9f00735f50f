#include "model/weights_import.hpp"

#include <apr/backend.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "model/ggml_type.hpp"
#include "model/gguf_writer.hpp"

namespace apr {

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& problem) {
    throw WeightsImportError(where + ": " + problem);
}

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, "cannot open");
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

std::string where(const std::string& path, size_t index) { return path + ":" + std::to_string(index + 1); }

struct Hparams {
    std::map<std::string, std::string> values;
    std::string path;

    const std::string& text(const std::string& key) const {
        auto it = values.find(key);
        if (it == values.end()) fail(path, "missing key '" + key + "'");
        return it->second;
    }
    uint32_t count(const std::string& key) const {
        const std::string& v = text(key);
        size_t used = 0;
        unsigned long n = 0;
        try {
            n = std::stoul(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != v.size() || n == 0 || n > (1u << 24))
            fail(path, key + " '" + v + "' is not a whole number in 1..16777216");
        return static_cast<uint32_t>(n);
    }
    float real(const std::string& key) const {
        const std::string& v = text(key);
        size_t used = 0;
        float x = 0;
        try {
            x = std::stof(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != v.size() || !std::isfinite(x) || x < 0) fail(path, key + " '" + v + "' is not a number >= 0");
        return x;
    }
};

Hparams read_hparams(const std::string& path) {
    Hparams h;
    h.path = path;
    const auto lines = read_lines(path);
    for (size_t i = 0; i < lines.size(); ++i) {
        std::string line = lines[i].substr(0, lines[i].find('#'));
        std::istringstream words(line);
        std::string key, value, extra;
        if (!(words >> key)) continue;
        if (!(words >> value) || (words >> extra)) fail(where(path, i), "expected 'key value'");
        if (!h.values.emplace(key, value).second) fail(where(path, i), "duplicate key '" + key + "'");
    }
    return h;
}

struct TensorEntry {
    std::string name;
    std::vector<uint64_t> ne;
    uint64_t n_values = 1;
};

std::vector<TensorEntry> read_tensor_list(const std::string& path) {
    std::vector<TensorEntry> list;
    const auto lines = read_lines(path);
    for (size_t i = 0; i < lines.size(); ++i) {
        std::istringstream words(lines[i]);
        TensorEntry t;
        if (!(words >> t.name)) continue;
        for (std::string d; words >> d;) {
            size_t used = 0;
            unsigned long long n = 0;
            try {
                n = std::stoull(d, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used == 0 || used != d.size() || n == 0 || n > (1ull << 32))
                fail(where(path, i), "dimension '" + d + "' is not a whole number in 1..2^32");
            t.ne.push_back(n);
            t.n_values *= n;
        }
        if (t.ne.empty() || t.ne.size() > 2) fail(where(path, i), "tensor '" + t.name + "' needs 1 or 2 dimensions");
        if (t.n_values > (1ull << 34)) fail(where(path, i), "tensor '" + t.name + "' is too large");
        list.push_back(std::move(t));
    }
    if (list.empty()) fail(path, "lists no tensors");
    return list;
}

}  // namespace

void import_trained_weights(const std::string& folder, const std::string& out_path, const WeightsImportOptions& options) {
    const std::string dir = folder.empty() || folder.back() == '/' ? folder : folder + "/";
    const Hparams hp = read_hparams(dir + "hparams.txt");
    const auto tensors = read_tensor_list(dir + "tensors.txt");

    std::vector<std::string> tokens = read_lines(dir + "tokens.txt");
    const uint32_t n_vocab = hp.count("n_vocab");
    if (tokens.size() != n_vocab)
        fail(dir + "tokens.txt", std::to_string(tokens.size()) + " tokens, hparams.txt says n_vocab " + std::to_string(n_vocab));
    for (size_t i = 0; i < tokens.size(); ++i)
        if (tokens[i].empty()) fail(where(dir + "tokens.txt", i), "empty token");
    if (tokens.size() < 2 || tokens[0] != "<s>" || tokens[1] != "</s>")
        fail(dir + "tokens.txt", "ids 0 and 1 must be <s> and </s>");
    std::vector<std::string> merges = read_lines(dir + "merges.txt");
    for (size_t i = 0; i < merges.size(); ++i)
        if (std::count(merges[i].begin(), merges[i].end(), ' ') != 1 || merges[i].front() == ' ' || merges[i].back() == ' ')
            fail(where(dir + "merges.txt", i), "expected 'left right'");

    const uint32_t n_embd = hp.count("n_embd"), n_layer = hp.count("n_layer"), n_head = hp.count("n_head");
    const uint32_t n_head_kv = hp.count("n_head_kv");
    if (n_embd % n_head != 0 || n_head % n_head_kv != 0 || (n_embd / n_head) % 2 != 0)
        fail(dir + "hparams.txt", "n_embd must be a multiple of n_head, n_head of n_head_kv, and head_dim even");

    GgufWriter w;
    const std::string a = "llama.";
    w.add_string("general.architecture", "llama");
    w.add_string("general.name", hp.text("name"));
    if (!options.license.empty()) w.add_string("general.license", options.license);
    if (!options.source.empty()) w.add_string("general.description", options.source);
    w.add_u32(a + "context_length", hp.count("n_ctx"));
    w.add_u32(a + "embedding_length", n_embd);
    w.add_u32(a + "block_count", n_layer);
    w.add_u32(a + "feed_forward_length", hp.count("n_ff"));
    w.add_u32(a + "attention.head_count", n_head);
    w.add_u32(a + "attention.head_count_kv", n_head_kv);
    w.add_f32(a + "attention.layer_norm_rms_epsilon", hp.real("rms_norm_eps"));
    w.add_f32(a + "rope.freq_base", hp.real("rope_freq_base"));
    w.add_u32(a + "rope.dimension_count", n_embd / n_head);
    w.add_u32(a + "vocab_size", n_vocab);
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", options.pre_tokenizer);
    std::vector<int64_t> types(tokens.size(), 1);  // normal
    types[0] = types[1] = 3;                        // control
    w.add_string_array("tokenizer.ggml.tokens", tokens);
    w.add_int_array("tokenizer.ggml.token_type", GgufType::INT32, types);
    w.add_string_array("tokenizer.ggml.merges", merges);
    w.add_u32("tokenizer.ggml.bos_token_id", 0);
    w.add_u32("tokenizer.ggml.eos_token_id", 1);
    w.add_bool("tokenizer.ggml.add_bos_token", true);
    w.add_bool("tokenizer.ggml.add_eos_token", false);

    const std::string bin = dir + "weights.bin";
    std::ifstream in(bin, std::ios::binary | std::ios::ate);
    if (!in) fail(bin, "cannot open");
    uint64_t expected = 0;
    for (const auto& t : tensors) expected += t.n_values * sizeof(float);
    const uint64_t actual = static_cast<uint64_t>(in.tellg());
    if (actual != expected)
        fail(bin, std::to_string(actual) + " bytes, tensors.txt describes " + std::to_string(expected));
    in.seekg(0);
    const auto traits = ggml_type_traits(options.matrix_type);
    if (!traits) fail(out_path, "unsupported matrix type " + std::to_string(options.matrix_type));
    const uint32_t block = traits->block_size;
    for (const auto& t : tensors) {
        std::vector<float> values(t.n_values);
        in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(t.n_values * sizeof(float)));
        if (!in) fail(bin, "short read in tensor '" + t.name + "'");
        for (float v : values)
            if (!std::isfinite(v)) fail(bin, "tensor '" + t.name + "' holds a NaN or infinity");
        const bool matrix = t.ne.size() == 2;
        if (matrix && t.ne[0] % block != 0)
            fail(dir + "tensors.txt", "tensor '" + t.name + "': row length " + std::to_string(t.ne[0]) +
                                         " is not whole blocks of " + std::to_string(block));
        w.add_tensor_f32(t.name, matrix ? options.matrix_type : uint32_t(APR_TYPE_F32), t.ne, values);
    }
    w.write(out_path);
}

}  // namespace apr
