#!/usr/bin/env bash
# README command 1: install dependencies, build apr, and run apr-run on the embedded default
# model, so the first thing a newcomer sees is a backend chosen, gated and serving text.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-deps.sh
build_dir=${APR_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build_dir" -j"$(nproc)"
"$build_dir/bin/apr-run" --list-backends
"$build_dir/bin/apr-run" -p "${APR_PROMPT:-A wise man once said}" -n "${APR_N_PREDICT:-48}" --temp 0
