# SPDX-License-Identifier: Apache-2.0
# devices_bench: operator commands over 100,000 devices (COUNT=N for
# another number): list pages and totals per sort key, selectors, prefix
# resolution, audit filters, bulk label and bulk decommission.
# `cmake --build B --target devices_bench_run`, or
# tests/bench/devices_bench.sh BUILD_DIR [COUNT]. Build without sanitizers.
if(TARGET fleetd AND TARGET fleetctl)
	add_custom_target(devices_bench_run
		COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/devices_bench.sh
			${PROJECT_BINARY_DIR} $ENV{COUNT}
		DEPENDS fleetd fleetctl
		USES_TERMINAL
		COMMENT "operator commands over a large fleet")
endif()
