# SPDX-License-Identifier: Apache-2.0
# list_bench: the device list with a selector, 50 per page, over 1,000,000
# devices (COUNT=N for another number): p50/p99/max server time per
# selector shape, first and next page, and PostgreSQL's own time.
# `cmake --build B --target list_bench_run`, or
# tests/bench/list_bench.sh BUILD_DIR [COUNT]. Build without sanitizers.
if(TARGET fleetd AND TARGET fleetctl)
	add_custom_target(list_bench_run
		COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/list_bench.sh
			${PROJECT_BINARY_DIR} $ENV{COUNT}
		DEPENDS fleetd fleetctl
		USES_TERMINAL
		COMMENT "device list with selectors over a large fleet")
endif()
