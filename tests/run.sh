#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The test command: installs missing packages, builds with warnings as
# errors and ASan/UBSan, runs every unit and integration test with ctest
# (integration tests start their own PostgreSQL in a temporary directory and
# remove it afterwards), prints the summary, exits non-zero on any failure.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. deploy/packages.sh
fleet_install_packages

build=${FLEET_TEST_BUILD_DIR:-$top/build/test}
mkdir -p "$(dirname "$build")"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DFLEET_WERROR=ON \
	-DFLEET_SANITIZE='address;undefined' >"$build.configure.log" 2>&1 || {
	mkdir -p "$(dirname "$build")"
	cat "$build.configure.log"
	exit 1
}
cmake --build "$build" -j"$(nproc)"

# Tests (and fuzz runs) side by side: one per core, at most 4. Integration
# tests are independent (tests/CMakeLists.txt); FLEET_TEST_JOBS overrides.
jobs=${FLEET_TEST_JOBS:-$(nproc)}
[ "$jobs" -le 4 ] || jobs=4

# Fuzz smoke: build the libFuzzer harnesses with clang and run each briefly
# on its seed corpus (a crash fails the run). Long runs: see tests/fuzz/.
fuzz=$build-fuzz
cmake -S . -B "$fuzz" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	-DFLEET_WERROR=ON -DFLEET_FUZZ=ON -DFLEET_SANITIZE='address;undefined' \
	>"$fuzz.configure.log" 2>&1 || {
	cat "$fuzz.configure.log"
	exit 1
}
targets=()
for corpus in tests/fuzz/corpus/*/; do
	targets+=("fuzz_$(basename "$corpus")")
done
cmake --build "$fuzz" -j"$(nproc)" --target "${targets[@]}" >/dev/null
# fuzz_run NAME: on a copy of its seed corpus; on a crash, the last lines
# of its log, status 1, and the scratch directory kept.
fuzz_run() {
	local t=$1 work rc=0
	work=$(mktemp -d)
	cp "tests/fuzz/corpus/${t#fuzz_}"/* "$work/"
	(cd "$work" && "$fuzz/tests/fuzz/$t" -max_total_time=${FLEET_FUZZ_SECONDS:-10} \
		-rss_limit_mb=4096 "$work" >"$work/log" 2>&1) || rc=1
	if [ "$rc" != 0 ]; then
		tail -n 40 "$work/log"
		echo "$t found a crash (its input and log are in $work)"
		return 1
	fi
	echo "$t: $(grep -Eo 'Done [0-9]+ runs' "$work/log" || echo ran)"
	rm -rf "$work"
}
fuzz_failed=0
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
	pids=()
	for t in "${targets[@]:i:jobs}"; do
		fuzz_run "$t" &
		pids+=("$!")
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || fuzz_failed=1
	done
done
[ "$fuzz_failed" = 0 ] || exit 1

# The OpenAPI tools (pinned; under the build tree; nothing is fetched when
# they are there): the response validator every integration test runs in
# harness_done, and the linter of test_openapi.sh.
FLEET_BUILD_DIR=$build FLEET_SOURCE_DIR=$top bash -c '. tests/lib/oas_tools.sh &&
	oas_tools_install validate && oas_tools_install lint'

# Always remove the test cluster, also when ctest is interrupted.
trap 'bash tests/lib/testpg.sh stop "$build/testpg.env" >/dev/null 2>&1 || true' EXIT
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
# Every tool was installed above: a test that finds one missing fails.
export FLEET_REQUIRE_TOOLS=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$build"
ctest --output-on-failure --timeout 900 -j"$jobs" "$@"
