# SPDX-License-Identifier: Apache-2.0
# Reports applied exactly once (core/report.c) with an in-memory store.
fleet_add_unit_test(test_report
	SOURCES test_report.c fake_store_reports.c
	LIBS fleetd_core)
target_include_directories(test_report PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
