# SPDX-License-Identifier: Apache-2.0
# config.status in batches (fleetd/channel/config_status.c): a fake seam
# with a job queue the test runs by hand, on the in-memory stores.
fleet_add_unit_test(test_config_status_batch
	SOURCES test_config_status_batch.c fake_store_config_delivery.c
		fake_store_reports.c
		${PROJECT_SOURCE_DIR}/fleetd/channel/config_status.c
		${PROJECT_SOURCE_DIR}/fleetd/channel/report_batch.c
	LIBS fleetd_core fleetcommon)
target_include_directories(test_config_status_batch PRIVATE
	${CMAKE_CURRENT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/fleetd)
