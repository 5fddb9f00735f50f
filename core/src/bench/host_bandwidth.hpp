// The host's memory bandwidth as apr-bench measures it: several threads memcpy disjoint slices
// of a buffer much larger than the last-level cache, the best of a few passes counts.
// Convention: `read_bytes_per_s` is the bytes the copy READ per second (one copy of N bytes
// reads N and writes N, so read+write traffic is twice that). Decode reads weights and writes
// almost nothing, so read bandwidth is the ceiling a decode step's weight traffic is held to.
#pragma once

#include <cstddef>

namespace apr::bench {

struct HostBandwidth {
    double read_bytes_per_s = 0.0;        // copy bytes read per second
    double read_write_bytes_per_s = 0.0;  // read + written per second (2x the above)
    size_t buffer_bytes = 0;              // size of the source (and of the destination) buffer
    unsigned threads = 0;
};

// The last-level cache's size in bytes as the OS reports it (sysfs, else sysconf); 32 MiB when
// it does not.
size_t last_level_cache_bytes();

// Copies a buffer of 8 x LLC bytes (at least 256 MiB, at most 1 GiB) `passes` times with `threads` threads
// (0 = all hardware threads). Throws std::bad_alloc when the buffers cannot be allocated.
HostBandwidth measure_host_bandwidth(unsigned threads, unsigned passes = 5);

}  // namespace apr::bench
