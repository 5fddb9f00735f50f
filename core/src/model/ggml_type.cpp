#include "model/ggml_type.hpp"

#include <apr/backend.h>

#include <algorithm>
#include <cctype>

namespace apr {

namespace {

// ggml's type ids with their names. Ids without a name were retired from ggml (4, 5: Q4_2,
// Q4_3; 31-33 and 36-38: repacked layouts that never appear in files).
struct NamedType {
    uint32_t id;
    const char* name;
};

constexpr NamedType kTypeNames[] = {
    {0, "F32"},      {1, "F16"},     {2, "Q4_0"},     {3, "Q4_1"},     {6, "Q5_0"},     {7, "Q5_1"},
    {8, "Q8_0"},     {9, "Q8_1"},    {10, "Q2_K"},    {11, "Q3_K"},    {12, "Q4_K"},    {13, "Q5_K"},
    {14, "Q6_K"},    {15, "Q8_K"},   {16, "IQ2_XXS"}, {17, "IQ2_XS"},  {18, "IQ3_XXS"}, {19, "IQ1_S"},
    {20, "IQ4_NL"},  {21, "IQ3_S"},  {22, "IQ2_S"},   {23, "IQ4_XS"},  {24, "I8"},      {25, "I16"},
    {26, "I32"},     {27, "I64"},    {28, "F64"},     {29, "IQ1_M"},   {30, "BF16"},    {34, "TQ1_0"},
    {35, "TQ2_0"},   {39, "MXFP4"},
};

// The block layouts of the types apr reads (ggml's QK and sizeof(block_*)).
struct SupportedType {
    uint32_t id;
    GgmlTypeTraits traits;
};

constexpr SupportedType kSupported[] = {
    {APR_TYPE_F32, {"F32", 1, 4}},
    {APR_TYPE_F16, {"F16", 1, 2}},
    {APR_TYPE_BF16, {"BF16", 1, 2}},
    {APR_TYPE_Q4_0, {"Q4_0", 32, 2 + 16}},
    {APR_TYPE_Q4_1, {"Q4_1", 32, 2 + 2 + 16}},
    {APR_TYPE_Q5_0, {"Q5_0", 32, 2 + 4 + 16}},
    {APR_TYPE_Q5_1, {"Q5_1", 32, 2 + 2 + 4 + 16}},
    {APR_TYPE_Q8_0, {"Q8_0", 32, 2 + 32}},
    {APR_TYPE_Q4_K, {"Q4_K", 256, 2 + 2 + 12 + 128}},
    {APR_TYPE_Q5_K, {"Q5_K", 256, 2 + 2 + 12 + 32 + 128}},
    {APR_TYPE_Q6_K, {"Q6_K", 256, 128 + 64 + 16 + 2}},
};

}  // namespace

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type) {
    for (const auto& s : kSupported)
        if (s.id == type) return s.traits;
    return std::nullopt;
}

std::string ggml_type_name(uint32_t type) {
    for (const auto& n : kTypeNames)
        if (n.id == type) return n.name;
    return "type " + std::to_string(type);
}

std::optional<uint32_t> ggml_type_from_name(const std::string& name) {
    std::string upper = name;
    std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return char(std::toupper(c)); });
    for (const auto& s : kSupported)
        if (upper == s.traits.name) return s.id;
    return std::nullopt;
}

}  // namespace apr
