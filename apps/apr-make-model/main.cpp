// apr-make-model: writes a synthetic GGUF model (seeded random weights, a SentencePiece-style
// vocabulary) for tests and benchmarks, or, with --import, a trained model from an apr weights
// folder (the default model's export step). The work is in core/src/model/synthetic_model.cpp
// and core/src/model/weights_import.cpp.
#include <boost/program_options.hpp>

#include <cstdio>
#include <iostream>
#include <string>

#include "model/ggml_type.hpp"
#include "model/synthetic_model.hpp"
#include "model/weights_import.hpp"

namespace po = boost::program_options;

namespace {

constexpr const char* kTypes = "f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q4_k|q5_k|q6_k";

// One line on stderr, exit status 2: the convention for a bad command line.
[[noreturn]] void usage_error(const std::string& message) {
    std::cerr << "apr-make-model: " << message << "\n";
    std::exit(2);
}

uint32_t parse_type(const std::string& flag, const std::string& name) {
    const auto t = apr::ggml_type_from_name(name);
    if (!t) usage_error(flag + ": unknown type '" + name + "' (expected " + kTypes + ")");
    return *t;
}

// The flag that sets a SyntheticModelSpec field, for error messages.
std::string flag_of(const std::string& field) {
    if (field == "weight_type") return "--type";
    if (field == "output_type") return "--output-type";
    if (field == "embd_type") return "--embd-type";
    if (field == "tied_embeddings") return "--tied";
    std::string f = "--" + field;
    for (char& c : f)
        if (c == '_') c = '-';
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    po::options_description opts("apr-make-model [options] OUT.gguf");
    std::string arch = "llama", shape = "tiny", type = "f32", output_type, embd_type, out;
    std::string import_dir, license, description;
    unsigned threads = 0;
    // Sizes are read as strings so that a bad value gets our one-line message naming the flag.
    std::string s_vocab, s_embd, s_layer, s_head, s_head_kv, s_ff, s_ctx, s_seed, s_base, s_threads;
    opts.add_options()
        ("help,h", "show this help")
        ("arch", po::value(&arch), "llama | qwen2 | qwen3 (default llama)")
        ("shape", po::value(&shape), "tiny | 1b | 7b (default tiny); the size flags below override it")
        ("n-vocab", po::value(&s_vocab), "vocabulary size (>= 259)")
        ("n-embd", po::value(&s_embd), "embedding width")
        ("n-layer", po::value(&s_layer), "transformer blocks")
        ("n-head", po::value(&s_head), "query heads")
        ("n-head-kv", po::value(&s_head_kv), "key/value heads")
        ("n-ff", po::value(&s_ff), "feed-forward width")
        ("n-ctx", po::value(&s_ctx), "training context length")
        ("type", po::value(&type), "weight type of the matrices (default f32): f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q4_k|q5_k|q6_k")
        ("output-type", po::value(&output_type), "type of output.weight (default: --type)")
        ("embd-type", po::value(&embd_type), "type of token_embd.weight (default: --type)")
        ("tied", "no output.weight: the output reuses token_embd")
        ("llama3-rope-freqs", "add rope_freqs.weight with Llama 3's frequency divisors")
        ("width-scaled-init", po::value<bool>(), "matrices with std 0.02*sqrt(256/row length) (default: on for 1b and 7b)")
        ("rope-freq-base", po::value(&s_base), "RoPE base (default 10000)")
        ("seed", po::value(&s_seed), "PRNG seed (default 1)")
        ("threads", po::value(&s_threads), "writer threads (default: up to 8); the file does not depend on it")
        ("import", po::value(&import_dir), "instead: write the trained model in this apr weights folder "
                                           "(core/src/model/weights_import.hpp), matrices in --type")
        ("license", po::value(&license), "with --import: general.license")
        ("description", po::value(&description), "with --import: general.description")
        ("out", po::value(&out), "output file");
    po::positional_options_description pos;
    pos.add("out", 1);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(opts).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        usage_error(e.what());
    }
    if (vm.count("help")) {
        std::cout << opts << "\n";
        return 0;
    }
    if (out.empty()) usage_error("missing the output file (OUT.gguf)");
    if (vm.count("import")) {
        try {
            apr::import_trained_weights(import_dir, out, {parse_type("--type", type), "qwen2", license, description});
        } catch (const std::exception& e) {
            std::cerr << "apr-make-model: " << e.what() << "\n";
            return 1;
        }
        return 0;
    }

    auto number = [](const std::string& flag, const std::string& text, uint64_t max) -> uint64_t {
        size_t used = 0;
        unsigned long long v = 0;
        try {
            if (text.empty() || text[0] == '-') throw std::invalid_argument("negative");
            v = std::stoull(text, &used, 10);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != text.size() || used == 0 || v > max)
            usage_error(flag + ": '" + text + "' is not a whole number in 0.." + std::to_string(max));
        return v;
    };

    apr::SyntheticModelSpec spec;
    try {
        spec = apr::synthetic_preset(shape);
    } catch (const apr::SyntheticSpecError&) {
        usage_error("--shape: unknown shape '" + shape + "' (expected tiny|1b|7b)");
    }
    spec.arch = arch;
    const std::pair<const char*, std::pair<std::string*, uint32_t*>> sizes[] = {
        {"--n-vocab", {&s_vocab, &spec.n_vocab}}, {"--n-embd", {&s_embd, &spec.n_embd}},
        {"--n-layer", {&s_layer, &spec.n_layer}}, {"--n-head", {&s_head, &spec.n_head}},
        {"--n-head-kv", {&s_head_kv, &spec.n_head_kv}}, {"--n-ff", {&s_ff, &spec.n_ff}},
        {"--n-ctx", {&s_ctx, &spec.n_ctx}}};
    for (const auto& [flag, target] : sizes)
        if (vm.count(flag + 2)) *target.second = uint32_t(number(flag, *target.first, 0xffffffffu));
    spec.weight_type = parse_type("--type", type);
    if (!output_type.empty()) spec.output_type = parse_type("--output-type", output_type);
    if (!embd_type.empty()) spec.embd_type = parse_type("--embd-type", embd_type);
    spec.tied_embeddings = vm.count("tied") > 0;
    spec.llama3_rope_freqs = vm.count("llama3-rope-freqs") > 0;
    if (vm.count("width-scaled-init")) spec.width_scaled_init = vm["width-scaled-init"].as<bool>();
    if (vm.count("seed")) spec.seed = number("--seed", s_seed, UINT64_MAX);
    if (vm.count("threads")) threads = unsigned(number("--threads", s_threads, 256));
    if (vm.count("rope-freq-base")) {
        try {
            size_t used = 0;
            spec.rope_freq_base = std::stof(s_base, &used);
            if (used != s_base.size()) throw std::invalid_argument("trailing");
        } catch (const std::exception&) {
            usage_error("--rope-freq-base: '" + s_base + "' is not a number");
        }
    }

    try {
        apr::validate_synthetic_spec(spec);
    } catch (const apr::SyntheticSpecError& e) {
        usage_error(flag_of(e.field()) + ": " + std::string(e.what()).substr(e.field().size() + 2));
    }
    try {
        apr::write_synthetic_model(out, spec, threads);
    } catch (const std::exception& e) {
        std::cerr << "apr-make-model: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
