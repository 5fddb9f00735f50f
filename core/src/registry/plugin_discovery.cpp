#include "registry/plugin_discovery.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <system_error>

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include "install/install_layout.hpp"
#include "log/log.hpp"

namespace apr {

namespace fs = std::filesystem;

namespace {
constexpr std::string_view kPrefix = "libapr_backend_";
constexpr std::string_view kSuffix = ".so";
}  // namespace

std::optional<std::string> backend_name_from_filename(const std::string& filename) {
    if (filename.size() <= kPrefix.size() + kSuffix.size()) return std::nullopt;
    if (filename.compare(0, kPrefix.size(), kPrefix) != 0) return std::nullopt;
    if (filename.compare(filename.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) return std::nullopt;
    std::string name = filename.substr(kPrefix.size(), filename.size() - kPrefix.size() - kSuffix.size());
    // Names are identifiers: letters, digits, '_' and '-'.
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return std::nullopt;
    return name;
}

std::string plugin_permission_problem(const fs::path& file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return "";  // gone: loading it reports the error
    const std::string refusing = "refusing " + file.string() + ": ";
    if (st.st_mode & S_IWOTH) return refusing + fmt::format("writable by other users (mode {:04o})", st.st_mode & 07777);
    if (st.st_uid != 0 && st.st_uid != ::geteuid())
        return refusing + fmt::format("owned by uid {}, neither root nor the current user (uid {})", st.st_uid, ::geteuid());
    const fs::path folder = file.parent_path().empty() ? fs::path(".") : file.parent_path();
    struct stat dir {};
    if (::stat(folder.c_str(), &dir) == 0 && (dir.st_mode & S_IWOTH) && !(dir.st_mode & S_ISVTX))
        return refusing + fmt::format("its folder {} is writable by other users without the sticky bit (mode {:04o})",
                                      folder.string(), dir.st_mode & 07777);
    return "";
}

PluginSearchPath default_search_path(const std::vector<fs::path>& plugin_dirs) {
    PluginSearchPath search;
    search.plugin_dirs = plugin_dirs;
    if (const char* env = std::getenv("APR_PLUGIN_PATH")) search.env_plugin_path = std::string(env);
    fs::path installed = installed_backend_dir();
    if (!installed.empty()) search.install_dir = installed;
    return search;
}

std::vector<SearchFolder> search_folders(const PluginSearchPath& search) {
    std::vector<SearchFolder> folders;
    for (const auto& d : search.plugin_dirs) folders.push_back({d, "--plugin-dir"});
    if (search.env_plugin_path) {
        const std::string& s = *search.env_plugin_path;
        size_t start = 0;
        while (start <= s.size()) {
            size_t colon = s.find(':', start);
            if (colon == std::string::npos) colon = s.size();
            // An empty entry would mean the current directory: never searched.
            if (colon > start) folders.push_back({s.substr(start, colon - start), "APR_PLUGIN_PATH"});
            start = colon + 1;
        }
    }
    if (search.install_dir) folders.push_back({*search.install_dir, "install"});
    for (auto& f : folders) {
        std::error_code ec;
        f.exists = fs::is_directory(f.path, ec);
    }
    return folders;
}

std::vector<PluginFile> discover_plugins(const PluginSearchPath& search) {
    std::vector<PluginFile> found;
    std::map<std::string, fs::path> winners;
    for (const SearchFolder& f : search_folders(search)) {
        const fs::path& folder = f.path;
        const std::string& origin = f.origin;
        std::error_code ec;
        if (!f.exists) {
            log::get().debug("plugin search: {} ({}) is not a folder, skipped", folder.string(), origin);
            continue;
        }
        std::vector<PluginFile> here;
        for (const auto& entry : fs::directory_iterator(folder, ec)) {
            auto name = backend_name_from_filename(entry.path().filename().string());
            if (!name) continue;
            std::error_code fec;
            if (!entry.is_regular_file(fec)) continue;
            PluginFile file{fs::absolute(entry.path()).lexically_normal(), *name, origin, false, {}, {}};
            file.refused = plugin_permission_problem(file.path);
            here.push_back(std::move(file));
        }
        std::sort(here.begin(), here.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
        for (auto& file : here) {
            auto it = winners.find(file.name);
            if (it != winners.end()) {
                file.shadowed = true;
                file.shadowed_by = it->second;
            } else {
                winners.emplace(file.name, file.path);
            }
            log::get().debug("plugin search: found {} in {} ({}){}", file.name, folder.string(), origin,
                             file.shadowed ? ", shadowed by " + file.shadowed_by.string() : "");
            found.push_back(std::move(file));
        }
    }
    return found;
}

}  // namespace apr
