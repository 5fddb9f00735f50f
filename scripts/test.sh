#!/usr/bin/env bash
# README command 2 (and what .ci/run runs): install dependencies if missing, build everything,
# run the whole test suite. Reference data is read from ../shared/testdata when it exists;
# tests that need it are reported as skipped, with the reason, when it does not.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-deps.sh
build_dir=${APR_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build_dir" -j"$(nproc)"
cd "$build_dir"
ctest --output-on-failure -j"$(nproc)" --timeout 900
