#!/usr/bin/env bash
# The whole test suite: installs what it needs, checks clang-format and clang-tidy, builds the
# agent optimized (where -O2's warnings show) and everything under ASan+UBSan, runs the unit
# and integration tests (real PostgreSQL 15 and MariaDB 10.11, started by the tests) in the
# sanitizer build, and runs the pgoutput and binlog fuzzers briefly. Each test runs once: the
# few assertions that only hold without sanitizers (peak memory, per-event cost) run in the
# optimized build.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

jobs=$(nproc)
# Each phase's wall time, so a slow CI run says where the time went.
phase() { echo "== $1 done at ${SECONDS}s"; }
phase "install-deps"
# House style: clang-format is the judge (.clang-format).
git ls-files '*.cpp' '*.h' | xargs clang-format --dry-run --Werror
# -O2 as shipped, without debug info, which CI never reads and which costs a third of the time.
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" >/dev/null
# House rules: .clang-tidy (naming, bugprone, performance) on everything but the tests. It needs
# only the compile commands, so it starts now, at the lowest priority: it takes the CPU that
# the builds and the tests leave idle (the tests mostly wait on their servers), and it is
# waited for at the end.
git ls-files 'agent/*.cpp' 'connectors/*.cpp' 'sinks/*.cpp' 'schema_registry/*.cpp' |
  xargs -P"$jobs" -n4 nice -n 19 clang-tidy -p build/release --quiet --warnings-as-errors='*' \
    >build/clang-tidy.log 2>&1 &
tidy=$!
release_only='^(pg_large_txn_test|metrics_pipeline_test)$'
ninja -C build/release -j"$jobs" tributary pg_large_txn_test metrics_pipeline_test
phase "release build"
ctest --test-dir build/release --output-on-failure -j"$jobs" -R "$release_only"
phase "release tests"

CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTRIBUTARY_FUZZ=ON >/dev/null
ninja -C build/fuzz -j"$jobs" pgoutput_fuzz binlog_rows_fuzz
mkdir -p build/fuzz/corpus build/fuzz/binlog_corpus
# Each fuzzer takes one core: both at once.
build/fuzz/tests/fuzz/pgoutput_fuzz -max_total_time="${FUZZ_SECONDS:-20}" -print_final_stats=1 \
  build/fuzz/corpus tests/fixtures/pgoutput >build/fuzz/pgoutput.log 2>&1 &
pgoutput_fuzz=$!
build/fuzz/tests/fuzz/binlog_rows_fuzz -max_total_time="${FUZZ_SECONDS:-20}" -print_final_stats=1 \
  build/fuzz/binlog_corpus >build/fuzz/binlog.log 2>&1 &
binlog_fuzz=$!
for run in "$pgoutput_fuzz build/fuzz/pgoutput.log" "$binlog_fuzz build/fuzz/binlog.log"; do
  set -- $run
  if ! wait "$1"; then
    cat "$2"
    echo "fuzz: finding above ($2)"
    exit 1
  fi
  tail -n 4 "$2"
done
echo "fuzz: pgoutput and binlog row decoders ran ${FUZZ_SECONDS:-20}s each without a finding"
phase "fuzz"

# -O1 keeps asserts and good sanitizer reports at a fraction of -O0's run time (the test files
# themselves build at -O0: tests/CMakeLists.txt); -g1 (line tables only) is all a sanitizer
# report needs, and compiles and links faster than -g. Precompiled headers (TRIBUTARY_PCH) save
# re-parsing nlohmann/json, spdlog and fmt in every file; not in the release build, whose
# compile commands clang-tidy reads (clang cannot load GCC's precompiled headers).
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1 -O1" \
  -DTRIBUTARY_SANITIZE=ON -DTRIBUTARY_PCH=ON >/dev/null
ninja -C build/asan -j"$jobs"
phase "asan build"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/asan --output-on-failure -j"$jobs" -E '^pg_large_txn_test$'
phase "asan tests"

if ! wait "$tidy"; then
  cat build/clang-tidy.log
  echo "clang-tidy: findings above"
  exit 1
fi
echo "clang-tidy: clean"
phase "clang-tidy"
