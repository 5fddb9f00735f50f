// Small models made by the project's own GGUF writer for tests, written once per test process
// into the test work folder and reused.
#pragma once

#include <filesystem>
#include <string>

#include "model/synthetic_model.hpp"

namespace apr::test {

// A model for `spec`, cached under the test work folder by a name derived from the spec.
std::filesystem::path synthetic_model(const SyntheticModelSpec& spec);
// The default tiny llama model (F32 weights): quick to run on every backend.
std::filesystem::path tiny_model();

}  // namespace apr::test
