// Skipping a test honestly: ctest is told (tests/CMakeLists.txt: SKIP_REGULAR_EXPRESSION) to
// report any test that prints the marker as skipped, so a missing prerequisite never looks like
// a pass. Use: APR_SKIP_TEST_UNLESS(cond, "reason"); it returns from the test when cond is false.
#pragma once

#include <iostream>
#include <string>

#define APR_TEST_SKIP_MARKER "[apr-test-skipped]"

#define APR_SKIP_TEST_UNLESS(cond, reason)                                            \
    do {                                                                              \
        if (!(cond)) {                                                                \
            std::cout << APR_TEST_SKIP_MARKER " " << std::string(reason) << std::endl; \
            return;                                                                   \
        }                                                                             \
    } while (0)
