// The CUDA plugin as the CUDA tests load it (support/backend_plugin.hpp), and its sessions.
#pragma once

#include "support/backend_plugin.hpp"
#include "support/logit_rows.hpp"

namespace apr::test {

class CudaPlugin : public BackendPlugin {
public:
    CudaPlugin() : BackendPlugin(plugin_path("cuda"), "CUDA") {}
};
using CudaSession = PluginSession;

}  // namespace apr::test
