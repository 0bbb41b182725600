# SPDX-License-Identifier: Apache-2.0
# enroll_bench: enrollments per second against a running fleetd, over a new
# TLS connection each, then over keep-alive connections (and, asked for,
# resuming TLS sessions), with the CPU of fleetd's processes and
# PostgreSQL per enrollment. `enroll_bench.sh` (or the enroll_bench_run
# target) starts PostgreSQL, fleetd with one net worker per core and a
# token, runs it and cleans up (docs/internals/enroll-rate.md). Build
# without sanitizers for meaningful figures:
#   cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo
#   cmake --build build-bench --target enroll_bench_run
find_package(Threads REQUIRED)
add_executable(enroll_bench ${CMAKE_CURRENT_LIST_DIR}/enroll_bench.c)
target_link_libraries(enroll_bench PRIVATE fleet_build_flags
	PkgConfig::OPENSSL Threads::Threads)
add_custom_target(enroll_bench_run
	COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/enroll_bench.sh ${PROJECT_BINARY_DIR}
	DEPENDS enroll_bench fleetd
	USES_TERMINAL
	COMMENT "enrollments per second against a local fleetd")
