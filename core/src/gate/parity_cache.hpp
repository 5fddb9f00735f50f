// Remembered gate passes. A pass is stored under $XDG_CACHE_HOME/apr/parity (default
// ~/.cache/apr/parity), keyed by the plugin file's content hash, the device and driver, the
// model file's identity and the gate's settings; any change to one of them misses. A corrupt
// or unwritable cache is a warning, never a failure.
#pragma once

#include <apr/backend.h>

#include <filesystem>
#include <optional>
#include <string>

#include "contract/parity_contract.hpp"
#include "gate/parity_gate.hpp"

namespace apr {

struct ParityCacheKey {
    std::string text;  // every part of the key, spelled out (stored in the entry and compared)
    std::string file;  // entry file name: a hash of `text`
};

ParityCacheKey make_parity_cache_key(const std::filesystem::path& plugin, const apr_device_info& device,
                                     const std::string& model_identity, const GateSettings& settings);

class ParityCache {
public:
    explicit ParityCache(std::filesystem::path dir) : dir_(std::move(dir)) {}
    // $XDG_CACHE_HOME/apr/parity, else $HOME/.cache/apr/parity; empty when neither is set.
    static std::filesystem::path default_dir();

    // The remembered pass for `key` (from_cache set), or nullopt.
    std::optional<contract::GateSummary> lookup(const ParityCacheKey& key) const;
    void store(const ParityCacheKey& key, const contract::GateSummary& summary) const;

private:
    std::filesystem::path dir_;
};

// FNV-1a 64 of a file's bytes, as 16 hex digits; empty if it cannot be read.
std::string file_content_hash(const std::filesystem::path& path);

}  // namespace apr
