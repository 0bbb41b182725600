# SPDX-License-Identifier: Apache-2.0
# config_bench: 10,000 fleet-sim devices (COUNT=N for another number)
# online against a private fleetd, one clone to all of them; prints the
# time from the clone API call to the last applied report, per-device
# latency p50/p99, and the time of a dry run over 100,000 devices in the
# database. `cmake --build B --target config_bench_run`, or
# tests/bench/config_bench.sh BUILD_DIR [COUNT]. Build without sanitizers:
#   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release
#   cmake --build build-rel --target config_bench_run
if(TARGET fleet-sim)
	add_custom_target(config_bench_run
		COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/config_bench.sh
			${PROJECT_BINARY_DIR} $ENV{COUNT}
		DEPENDS fleet-sim fleetd
		USES_TERMINAL
		COMMENT "clone a configuration to fleet-sim devices")
endif()
