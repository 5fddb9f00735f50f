#include "gate/parity_cache.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>

#include "log/log.hpp"

namespace apr {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;

uint64_t fnv1a(uint64_t h, const char* data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        h ^= static_cast<unsigned char>(data[i]);
        h *= kFnvPrime;
    }
    return h;
}

std::string hex64(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

}  // namespace

std::string file_content_hash(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    uint64_t h = kFnvOffset;
    char buf[1 << 16];
    while (in) {
        in.read(buf, sizeof buf);
        h = fnv1a(h, buf, static_cast<size_t>(in.gcount()));
    }
    return hex64(h);
}

ParityCacheKey make_parity_cache_key(const fs::path& plugin, const apr_device_info& device,
                                     const std::string& model_identity, const GateSettings& settings) {
    std::ostringstream key;
    key << contract::kTag << "\n"
        << "apr " << APR_VERSION << "\n"
        << "plugin " << file_content_hash(plugin) << "\n"
        << "device " << device.description << "\n"
        << "driver " << device.driver << "\n"
        << "model " << model_identity << "\n"
        << "gate positions=" << settings.positions << " threshold=" << settings.criteria.min_cosine
        << " near_tie=" << settings.criteria.near_tie << "\n";
    ParityCacheKey k;
    k.text = key.str();
    k.file = hex64(fnv1a(kFnvOffset, k.text.data(), k.text.size())) + ".pass";
    return k;
}

fs::path ParityCache::default_dir() {
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "apr" / "parity";
    if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache" / "apr" / "parity";
    return {};
}

// Entry format: the key text, a line "---", then "min_cosine top1_agree positions seconds".
std::optional<contract::GateSummary> ParityCache::lookup(const ParityCacheKey& key) const {
    if (dir_.empty()) return std::nullopt;
    fs::path entry = dir_ / key.file;
    std::error_code ec;
    if (!fs::exists(entry, ec)) return std::nullopt;
    std::ifstream in(entry);
    std::stringstream all;
    all << in.rdbuf();
    const std::string text = all.str();
    const std::string separator = "---\n";
    size_t sep = text.find(separator);
    contract::GateSummary s;
    if (in.bad() || sep == std::string::npos) {
        log::get().warn("warning: parity cache entry {} is corrupt; ignoring it and running the gate", entry.string());
        return std::nullopt;
    }
    if (text.compare(0, sep, key.text) != 0) return std::nullopt;  // a hash collision: not ours
    std::istringstream fields(text.substr(sep + separator.size()));
    if (!(fields >> s.min_cosine >> s.top1_agree >> s.positions >> s.seconds) || s.positions == 0 ||
        !(s.min_cosine >= 0.0 && s.min_cosine <= 1.0 + 1e-9)) {
        log::get().warn("warning: parity cache entry {} is corrupt; ignoring it and running the gate", entry.string());
        return std::nullopt;
    }
    s.from_cache = true;
    return s;
}

void ParityCache::store(const ParityCacheKey& key, const contract::GateSummary& summary) const {
    if (dir_.empty()) return;
    std::error_code ec;
    fs::create_directories(dir_, ec);
    fs::path entry = dir_ / key.file;
    fs::path tmp = entry;
    tmp += ".tmp";
    {
        std::ofstream out(tmp);
        char line[128];
        std::snprintf(line, sizeof line, "%.9f %u %u %.6f\n", summary.min_cosine, summary.top1_agree, summary.positions,
                      summary.seconds);
        out << key.text << "---\n" << line;
        out.close();
        if (!out) {
            log::get().warn("warning: cannot write the parity cache at {}; the gate will run again next time",
                            dir_.string());
            fs::remove(tmp, ec);
            return;
        }
    }
    fs::rename(tmp, entry, ec);
    if (ec) log::get().warn("warning: cannot write the parity cache entry {}: {}", entry.string(), ec.message());
}

}  // namespace apr
