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

# Always remove the test cluster, also when ctest is interrupted.
trap 'bash tests/lib/testpg.sh stop "$build/testpg.env" >/dev/null 2>&1 || true' EXIT
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$build"
ctest --output-on-failure --timeout 900 "$@"
