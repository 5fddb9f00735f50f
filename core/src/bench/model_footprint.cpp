#include "bench/model_footprint.hpp"

#include <cstdio>
#include <map>
#include <set>
#include <string_view>

#include "model/ggml_type.hpp"

namespace apr::bench {

ModelFootprint model_footprint(const apr_model_view& model) {
    ModelFootprint f;
    f.arch = model.arch_name ? model.arch_name : "?";
    std::set<const void*> counted;  // a tied output.weight shares token_embd's bytes
    std::map<uint32_t, uint64_t> bytes_by_type;
    for (uint32_t i = 0; i < model.n_tensors; ++i) {
        const apr_tensor_view& t = model.tensors[i];
        const std::string_view name = t.name;
        uint64_t elements = 1;
        for (uint32_t d = 0; d < t.n_dims && d < 4; ++d) elements *= t.ne[d];
        if (counted.insert(t.data).second) {
            f.size_bytes += t.n_bytes;
            f.params += elements;
        }
        if (name == "token_embd.weight") {
            const uint64_t rows = t.n_dims >= 2 && t.ne[1] > 0 ? t.ne[1] : 1;
            f.decode_read_bytes += t.n_bytes / rows;
        } else {
            f.decode_read_bytes += t.n_bytes;  // output.weight counts in full even when tied
            if (t.n_dims >= 2) bytes_by_type[t.type] += t.n_bytes;
        }
    }
    uint32_t main_type = APR_TYPE_F32;
    uint64_t most = 0;
    for (const auto& [type, bytes] : bytes_by_type)
        if (bytes > most) most = bytes, main_type = type;
    f.weight_type = ggml_type_name(main_type);
    return f;
}

std::string params_label(uint64_t params) {
    char text[32];
    if (params >= 1000000000ull)
        std::snprintf(text, sizeof text, "%.2f B", params / 1e9);
    else
        std::snprintf(text, sizeof text, "%.2f M", params / 1e6);
    return text;
}

std::string size_label(uint64_t bytes) {
    char text[32];
    if (bytes >= (1ull << 30))
        std::snprintf(text, sizeof text, "%.2f GiB", bytes / double(1ull << 30));
    else
        std::snprintf(text, sizeof text, "%.2f MiB", bytes / double(1ull << 20));
    return text;
}

}  // namespace apr::bench
