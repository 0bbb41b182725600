# SPDX-License-Identifier: Apache-2.0
# artifact_bench: 20 parallel mutual-TLS downloads of a 64 MiB artifact
# from fleetd (from its cache file, then chunk by chunk from PostgreSQL)
# and of the same file from nginx (Debian) over TLS, the aggregate MiB/s
# and the ratios; then fleet-agent's idle private memory and stripped
# binary size. `cmake --build B --target artifact_bench_run`, or
# tests/bench/artifact_bench.sh BUILD_DIR. Build without sanitizers:
#   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release
#   cmake --build build-rel --target artifact_bench_run
if(TARGET fleetd AND TARGET fleet-agent)
	add_custom_target(artifact_bench_run
		COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/artifact_bench.sh
			${PROJECT_BINARY_DIR}
		DEPENDS fleetd fleet-agent
		USES_TERMINAL
		COMMENT "artifact downloads: fleetd against nginx")
endif()
