# SPDX-License-Identifier: Apache-2.0
# The channel's message table driving the report use case, with fakes of
# the channel seam and of the store (no lws, no PostgreSQL).
fleet_add_unit_test(test_report_dispatch
	SOURCES test_report_dispatch.c fake_store_reports.c
		${PROJECT_SOURCE_DIR}/fleetd/channel/dispatch.c
	LIBS fleetd_core fleetcommon)
target_include_directories(test_report_dispatch PRIVATE
	${CMAKE_CURRENT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/fleetd)
