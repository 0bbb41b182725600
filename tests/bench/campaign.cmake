# SPDX-License-Identifier: Apache-2.0
# campaign_bench: 10,000 fleet-sim devices (COUNT=N) online, then a
# 4-phase firmware campaign with zero soak and a small artifact; prints the
# time from each phase's release to its last offer sent and the campaign's
# end-to-end duration. Build without sanitizers:
#   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release
#   cmake --build build-rel --target campaign_bench_run
if(TARGET fleet-sim)
	add_custom_target(campaign_bench_run
		COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/campaign_bench.sh
			${PROJECT_BINARY_DIR} $ENV{COUNT}
		DEPENDS fleet-sim fleetd fleetctl
		USES_TERMINAL
		COMMENT "a 4-phase firmware campaign over fleet-sim devices")
endif()
