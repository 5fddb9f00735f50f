#include "support/models.hpp"

#include <unistd.h>

#include <mutex>

#include "model/ggml_type.hpp"
#include "support/testdata.hpp"

namespace apr::test {

std::filesystem::path synthetic_model(const SyntheticModelSpec& spec) {
    static std::mutex mutex;
    std::lock_guard lock(mutex);
    std::string name = spec.arch + "-v" + std::to_string(spec.n_vocab) + "-e" + std::to_string(spec.n_embd) + "-l" +
                       std::to_string(spec.n_layer) + "-h" + std::to_string(spec.n_head) + "-" +
                       std::to_string(spec.n_head_kv) + "-f" + std::to_string(spec.n_ff) + "-" +
                       ggml_type_name(spec.weight_type) + (spec.tied_embeddings ? "-tied" : "") +
                       (spec.llama3_rope_freqs ? "-rf" : "") + "-s" + std::to_string(spec.seed) + ".gguf";
    std::filesystem::path dir = std::filesystem::path(APR_TEST_WORK_DIR) / "models";
    std::filesystem::create_directories(dir);
    std::filesystem::path path = dir / name;
    // Written under a temporary name and renamed, so a concurrent test process never reads half a file.
    if (!std::filesystem::exists(path)) {
        std::filesystem::path tmp = path;
        tmp += ".tmp" + std::to_string(::getpid());
        write_synthetic_model(tmp.string(), spec);
        std::filesystem::rename(tmp, path);
    }
    return path;
}

std::filesystem::path tiny_model() { return synthetic_model(SyntheticModelSpec{}); }

}  // namespace apr::test
