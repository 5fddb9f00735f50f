// The tokenizer test cases of llama.cpp's models/ggml-vocab-*.gguf.{inp,out} (external data in
// ../shared/testdata/vocab): input texts and the ids the original tokenizers produced with
// add_special = false, parse_special = false.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/testdata.hpp"

namespace apr::test {

struct VocabCase {
    std::string text;
    std::vector<int32_t> ids;
};

inline std::filesystem::path vocab_file(const std::string& name) { return testdata_dir() / "vocab" / name; }

inline std::string read_all(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + p.string());
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// <vocab>.inp holds each text followed by "\n__ggml_vocab_test__\n"; line k of <vocab>.out holds
// the ids of text k.
inline std::vector<VocabCase> load_vocab_cases(const std::string& vocab_name) {
    const std::string inp = read_all(vocab_file(vocab_name + ".inp"));
    const std::string out = read_all(vocab_file(vocab_name + ".out"));
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<VocabCase> cases;
    for (size_t pos = 0; pos < inp.size();) {
        const size_t at = inp.find(sep, pos);
        if (at == std::string::npos) throw std::runtime_error(vocab_name + ".inp: text after the last separator");
        cases.push_back({inp.substr(pos, at - pos), {}});
        pos = at + sep.size();
    }
    std::istringstream lines(out);
    std::string line;
    for (auto& c : cases) {
        if (!std::getline(lines, line)) throw std::runtime_error(vocab_name + ".out has fewer lines than cases");
        std::istringstream ids(line);
        for (int64_t id; ids >> id;) c.ids.push_back(static_cast<int32_t>(id));
    }
    return cases;
}

}  // namespace apr::test
