# SPDX-License-Identifier: Apache-2.0
# The message table sends config.status to its own handler
# (fleetd/channel/config_status.c, issue 9): test_report_dispatch
# (report_dispatch.cmake, included before this file) links it with its
# in-memory store, which keeps config.status on the same report window.
if(TARGET test_report_dispatch)
	target_sources(test_report_dispatch PRIVATE
		${PROJECT_SOURCE_DIR}/fleetd/channel/config_status.c
		${PROJECT_SOURCE_DIR}/fleetd/channel/report_batch.c
		${CMAKE_CURRENT_SOURCE_DIR}/fake_store_config_delivery.c)
endif()
