// The Vulkan plugin as the Vulkan tests load it (support/backend_plugin.hpp), and its sessions.
#pragma once

#include "support/backend_plugin.hpp"
#include "support/logit_rows.hpp"

namespace apr::test {

class VulkanPlugin : public BackendPlugin {
public:
    VulkanPlugin() : BackendPlugin(plugin_path("vulkan"), "Vulkan") {}
};
using VulkanSession = PluginSession;

}  // namespace apr::test
