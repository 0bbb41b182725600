# SPDX-License-Identifier: Apache-2.0
# conn_bench: 1,000 fleet-sim agents (COUNT=N for more) against a private
# fleetd; prints the time until all are online and fleetd's memory per
# connected agent. `cmake --build B --target conn_bench_run`, or
# tests/bench/conn_bench.sh BUILD_DIR [COUNT]. Build without sanitizers for
# meaningful memory figures:
#   cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo
#   cmake --build build-bench --target conn_bench_run
if(TARGET fleet-sim)
	add_custom_target(conn_bench_run
		COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/conn_bench.sh
			${PROJECT_BINARY_DIR} $ENV{COUNT}
		DEPENDS fleet-sim fleetd
		USES_TERMINAL
		COMMENT "connect fleet-sim agents to a local fleetd")
endif()

# mqtt_idle: N idle mTLS MQTT clients, for conn_bench's Mosquitto figure.
add_executable(mqtt_idle ${CMAKE_CURRENT_LIST_DIR}/mqtt_idle.c)
target_link_libraries(mqtt_idle PRIVATE PkgConfig::OPENSSL fleet_build_flags)
if(TARGET conn_bench_run)
	add_dependencies(conn_bench_run mqtt_idle)
endif()
