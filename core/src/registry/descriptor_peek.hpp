// Reading a plugin's descriptor from its file without loading it: the ELF dynamic symbol table
// locates `apr_backend_descriptor`, and its integer fields (ABI version, struct size, priority,
// flags) are plain bytes in the file. This is how apr orders backends by priority and how
// `--no-gpu` keeps GPU plugins out of the process entirely: no plugin code runs to decide.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace apr {

struct DescriptorPeek {
    uint32_t abi_version = 0;
    uint32_t struct_size = 0;
    // Present only when the ABI version is one whose layout this core knows.
    std::optional<int32_t> priority;
    std::optional<uint32_t> flags;
};

// The descriptor's integer fields, or nullopt with `error` saying why they could not be read
// (not an ELF file, no such symbol, truncated file...).
std::optional<DescriptorPeek> peek_descriptor(const std::filesystem::path& plugin, std::string& error);

}  // namespace apr
