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
repo_root=$PWD
cd "$build_dir"
ctest --output-on-failure -j"$(nproc)" --timeout 900

# ---- second pass: the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer ----
# One clang build serves both this pass and the fuzzers: APR_BUILD_FUZZERS instruments
# everything (core, apr-run, the cpu and vulkan plugins, fixtures, tests) with ASan + UBSan and
# libFuzzer's coverage hooks. CUDA is left out (nvcc and ASan do not mix). Any sanitizer report
# fails its test (-fno-sanitize-recover, halt_on_error). LeakSanitizer's known reports inside
# Mesa/lavapipe are suppressed by library in tests/reliability/lsan.supp.
# APR_SKIP_SANITIZERS=1 skips this pass (a quick local run).
if [[ "${APR_SKIP_SANITIZERS:-0}" != 1 ]]; then
  cd "$repo_root"
  san_dir=${APR_SAN_BUILD_DIR:-build-sanitize}
  CC=clang CXX=clang++ cmake -S . -B "$san_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DAPR_BUILD_FUZZERS=ON -DAPR_WITH_CUDA=OFF
  cmake --build "$san_dir" -j"$(nproc)"
  export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=0
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  export LSAN_OPTIONS=suppressions=$PWD/tests/reliability/lsan.supp:print_suppressions=0
  (cd "$san_dir" && ctest --output-on-failure -j"$(nproc)" --timeout 1800)
  # Bounded fuzz runs (APR_FUZZ_SECONDS each, 60 by default).
  bash fuzz/run_fuzzers.sh "$san_dir" "${APR_FUZZ_SECONDS:-60}"
fi
