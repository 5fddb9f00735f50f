// The device's memory bandwidth as apr-bench counts it (the descriptor's measure_copy_rate):
// device-to-device copies by a shader, far larger than any cache, (bytes read + written) per second.
#pragma once

#include "vulkan_context.hpp"

namespace apr_vulkan {

// Uses ctx's command buffer between steps; the scratch buffers are freed before returning.
// Throws BackendError (APR_ERR_OUT_OF_MEMORY when even 64 MiB buffers cannot be had).
double measure_copy_rate(Context& ctx);

}  // namespace apr_vulkan
