// apr_backend_step's argument contract (sdk/include/apr/backend.h), checked the same way for
// every GPU backend's tests: bad calls fail with APR_ERR_INVALID_ARGUMENT and a reason that
// names what was wrong, and a good call afterwards still works.
#pragma once

#include <apr/backend.h>
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "support/backend_plugin.hpp"

namespace apr::test {

// `session` is freshly opened with n_ctx 16 on a model of n_vocab < 5000 tokens.
inline void check_bad_step_calls(const BackendPlugin& plugin, apr_session* session, uint32_t n_vocab) {
    std::vector<float> logits(16 * static_cast<size_t>(n_vocab));
    std::vector<int32_t> tokens = {1, 2, 3};
    CHECK(plugin.step(session, tokens.data(), 3, 1, 0, logits.data()) == APR_ERR_INVALID_ARGUMENT);  // past the cache
    CHECK(plugin.last_error().find("pos 1") != std::string::npos);
    CHECK(plugin.step(session, tokens.data(), 3, 14, 0, logits.data()) == APR_ERR_INVALID_ARGUMENT);  // beyond n_ctx
    int32_t bad_token = 5000;
    CHECK(plugin.step(session, &bad_token, 1, 0, 0, logits.data()) == APR_ERR_INVALID_ARGUMENT);
    CHECK(plugin.last_error().find("5000") != std::string::npos);
    CHECK(plugin.step(nullptr, tokens.data(), 1, 0, 0, logits.data()) == APR_ERR_INVALID_ARGUMENT);
    CHECK(plugin.step(session, tokens.data(), 0, 0, 0, logits.data()) == APR_ERR_INVALID_ARGUMENT);
    CHECK(plugin.step(session, tokens.data(), 3, 0, 0, logits.data()) == APR_OK);
}

}  // namespace apr::test
