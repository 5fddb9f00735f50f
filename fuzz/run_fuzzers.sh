#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time on a seed corpus written by the project's own
# GGUF writer (apr_fuzz_seeds). Fails when a target reports a crash, a leak, a timeout or a
# sanitizer error. Usage: fuzz/run_fuzzers.sh <build-dir with APR_BUILD_FUZZERS=ON> [seconds each]
# New inputs found during the run go to <build-dir>/fuzz-corpus/<target>; crashes to
# <build-dir>/fuzz-artifacts/ (each one becomes a regression test in tests/reliability).
set -euo pipefail
build_dir=${1:?usage: run_fuzzers.sh <build-dir> [seconds]}
seconds=${2:-60}
bin="$build_dir/bin"
work="$build_dir/fuzz-corpus"
artifacts="$build_dir/fuzz-artifacts"
mkdir -p "$work" "$artifacts"
rm -rf "$work/seeds"
"$bin/apr_fuzz_seeds" "$work/seeds"

for target in gguf tokenizer; do
  corpus="$work/$target"
  mkdir -p "$corpus"
  echo "== fuzz $target: ${seconds} s"
  # -rss_limit_mb: the reader must refuse absurd sizes before allocating, so a big allocation is
  # itself a finding. -timeout: one input taking over 10 s is a hang.
  "$bin/apr_fuzz_$target" "$corpus" "$work/seeds/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$target-" 2>&1 | tail -n 25
done
