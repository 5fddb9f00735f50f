// The device's memory bandwidth as apr-bench counts it (the descriptor's measure_copy_rate):
// a device-to-device copy far larger than the L2 cache, (bytes read + written) per second.
#pragma once

namespace apr_cuda {

// On the current device, with scratch buffers freed before returning. Throws BackendError
// (APR_ERR_OUT_OF_MEMORY when even the smallest useful buffers do not fit).
double measure_device_copy_rate();

}  // namespace apr_cuda
