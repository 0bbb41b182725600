# SPDX-License-Identifier: Apache-2.0
# renew_bench: 10,000 fleet-sim devices (COUNT=N) told to rotate at once;
# prints renewals per second over live channels and the time until all
# have the new certificate. Build without sanitizers:
#   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release
#   cmake --build build-rel --target renew_bench_run
if(TARGET fleet-sim)
	add_custom_target(renew_bench_run
		COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/renew_bench.sh
			${PROJECT_BINARY_DIR} $ENV{COUNT}
		DEPENDS fleet-sim fleetd
		USES_TERMINAL
		COMMENT "rotate the certificates of fleet-sim agents at once")
endif()
