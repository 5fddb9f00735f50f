// Reading the llama.cpp oracle's files (../shared/testdata/oracle, README there): the token
// list of a <model>.json and the raw little-endian f32 logits of a <model>.logits.bin.
// Header-only, shared by the oracle tests of the reference and of every backend.
#pragma once

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <vector>

namespace apr::test {

inline std::vector<int32_t> read_oracle_tokens(const std::filesystem::path& json_path) {
    boost::property_tree::ptree json;
    boost::property_tree::read_json(json_path.string(), json);
    std::vector<int32_t> tokens;
    for (const auto& item : json.get_child("tokens")) tokens.push_back(item.second.get_value<int32_t>());
    return tokens;
}

inline std::vector<float> read_floats(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    std::vector<float> values(std::filesystem::file_size(path) / sizeof(float));
    in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(float)));
    REQUIRE(in);
    return values;
}

}  // namespace apr::test
