// Finding backend plugin files: libapr_backend_<name>.so in the --plugin-dir folders, then the
// APR_PLUGIN_PATH folders, then the install folder relative to the executable. Never the
// current directory. The first file for a name wins; later ones are kept as shadowed.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace apr {

struct PluginSearchPath {
    std::vector<std::filesystem::path> plugin_dirs;   // --plugin-dir, in the order given
    std::optional<std::string> env_plugin_path;       // APR_PLUGIN_PATH (colon-separated), if set
    std::optional<std::filesystem::path> install_dir; // <exe dir>/../lib/apr/backends
};

struct PluginFile {
    std::filesystem::path path;
    std::string name;        // <name> of libapr_backend_<name>.so
    std::string origin;      // "--plugin-dir", "APR_PLUGIN_PATH" or "install"
    bool shadowed = false;   // an earlier file has the same name
    std::filesystem::path shadowed_by;
    // Non-empty when the file may not be loaded because someone other than root or this user
    // could have replaced it (plugin_permission_problem); it is then a `load` rejection.
    std::string refused;
};

// Why loading `file` would run code that another user could have planted, or "" when it is
// safe. As sudo and the Vulkan loader do: refused are a file writable by other users (o+w), a
// file owned by neither root nor the current user, and a file whose folder is writable by
// other users without the sticky bit (anyone could swap the file). Group-writable files are
// accepted (a shared install group is a legitimate setup). Only the file and its own folder
// are checked, not every ancestor: those are what a file search trusts directly.
// e.g. "refusing /x/libapr_backend_y.so: writable by other users (mode 0666)"
std::string plugin_permission_problem(const std::filesystem::path& file);

// The search path of this process: the given --plugin-dir list, APR_PLUGIN_PATH from the
// environment, and the install folder next to the running executable.
PluginSearchPath default_search_path(const std::vector<std::filesystem::path>& plugin_dirs);

// The backend name in a file name, or nullopt when it is not libapr_backend_<name>.so.
std::optional<std::string> backend_name_from_filename(const std::string& filename);

// One folder of the search, in search order; `exists` is false for one that is not a folder
// (skipped). What `apr-run --list-backends` shows under "searched".
struct SearchFolder {
    std::filesystem::path path;
    std::string origin;  // "--plugin-dir", "APR_PLUGIN_PATH" or "install"
    bool exists = false;
};
std::vector<SearchFolder> search_folders(const PluginSearchPath& search);

// Every plugin file found, winners and shadowed alike, in search order (by name within a folder).
std::vector<PluginFile> discover_plugins(const PluginSearchPath& search);

}  // namespace apr
