// Block layouts of the tensor types apr reads: how many elements a block holds and how many
// bytes it takes. Shared by the GGUF reader (sizes, validation), the model loader and the writer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace apr {

struct GgmlTypeTraits {
    const char* name;     // "Q4_K"
    uint32_t block_size;  // elements per block (1 for F32/F16/BF16)
    uint32_t type_size;   // bytes per block
};

// Traits of a type apr supports (the apr_tensor_type values); nullopt for anything else.
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type);
// A readable name for any type id, supported or not ("Q2_K", "type 99").
std::string ggml_type_name(uint32_t type);
// The type id of a name ("q4_0", "Q4_K", case-insensitive); nullopt if unknown or unsupported.
std::optional<uint32_t> ggml_type_from_name(const std::string& name);

}  // namespace apr
