// A model file that shrinks while it is mapped (another program truncates or rewrites it)
// makes the kernel send SIGBUS on the next touch of a page past the new end. Nothing can read
// those bytes any more, so the process cannot go on; what it can do is say why instead of
// dying of "Bus error". guard_mapped_file registers a mapping; a SIGBUS whose fault address lies
// inside a registered mapping prints
//   "apr: model file <path> shrank while in use (bus error at byte <offset>); it must not be
//    modified while apr runs"
// and exits with status 1. A SIGBUS anywhere else is re-raised with the default action, so
// other bus errors look exactly as before.
//
// Why not a sigsetjmp around the first touch: the first touch is in the reference, the gate and
// every plugin (plugins read the mapping directly through the model view), so there is no
// single place to catch it, and a truncation can come after the first touch too (the kernel
// drops the pages past the new end from every mapping).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace apr {

// Registers `bytes` (a file mapping) under `path` and installs the SIGBUS handler on the first
// call. Up to 16 mappings; later ones are not guarded (and say so in the log).
void guard_mapped_file(std::span<const uint8_t> bytes, const std::string& path);

}  // namespace apr
