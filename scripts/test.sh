#!/usr/bin/env bash
# test.sh - the README's second command: build and run every test.
#   1. Release build, all CTest tests (unit, end-to-end, golden, fuzz replay)
#   2. ASan + UBSan build, the same tests but those marked release-only
#      (whole-CT and browser runs; their code is under ASan in unit tests)
#   3. libFuzzer targets (clang), each for R3D_FUZZ_SECONDS (default 10; the corpus
#      is also replayed in both builds above; set it higher for a real hunt)
# Data-dependent tests read ../shared/data and skip with a reason without it.
# Exits non-zero if anything failed; the last line is the overall count.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/deps.sh --with-tests || exit 1
jobs=$(nproc)
fuzz_seconds=${R3D_FUZZ_SECONDS:-10}
failed=0; passed=0

stage() { echo; echo "=== $* (at ${SECONDS} s)"; }
run_ctest() {  # dir label [ctest options]
  local out; out=$(mktemp)
  ctest --test-dir "$1" --output-on-failure -j"$jobs" "${@:3}" 2>&1 | tee "$out"
  local rc=${PIPESTATUS[0]}
  local line; line=$(grep -E "tests passed, [0-9]+ tests failed out of" "$out" | tail -1)
  local tot=$(echo "$line" | sed -E 's/.* out of ([0-9]+).*/\1/')
  local bad=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) tests failed.*/\1/')
  rm -f "$out"
  if [ -z "$line" ]; then failed=$((failed+1)); echo "$2: no test ran"; return; fi
  passed=$((passed + tot - bad)); failed=$((failed + bad))
  [ "$rc" -eq 0 ] || [ "$bad" -gt 0 ] || failed=$((failed+1))
}

stage "release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$jobs" || exit 1
stage "release tests"
run_ctest build release

stage "ASan + UBSan build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DR3D_SANITIZE=ON >/dev/null &&
  cmake --build build-asan -j"$jobs" || exit 1
stage "ASan + UBSan tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_ctest build-asan asan -LE release_only

stage "libFuzzer (${fuzz_seconds}s per target)"
# only the fuzz targets (and the library under them): the CLI, server and
# tests were built and run twice already
fuzz_targets=$(for f in tests/fuzz/fuzz_*.c; do basename "$f" .c; done)
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DR3D_FUZZ=ON -DR3D_SANITIZE=ON >/dev/null &&
  cmake --build build-fuzz -j"$jobs" --target $fuzz_targets || exit 1
for f in build-fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  case "$f" in *_replay) continue ;; esac
  name=$(basename "$f")
  work=$(mktemp -d)
  cp -r "tests/fuzz/corpus/$name/." "$work/" 2>/dev/null || true
  if "$f" -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
       -artifact_prefix="$work/" "$work" >"$work.log" 2>&1; then
    echo "fuzz $name: ok ($(grep -cE '^#[0-9]+' "$work.log") status lines)"; passed=$((passed+1))
  else
    echo "fuzz $name: FAILED"; tail -40 "$work.log"; failed=$((failed+1))
    mkdir -p build-fuzz/crashes && cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* build-fuzz/crashes/ 2>/dev/null
  fi
  rm -rf "$work" "$work.log"
done

echo
echo "all stages took ${SECONDS} s"
echo "recon3d tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
