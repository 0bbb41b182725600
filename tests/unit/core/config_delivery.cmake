# SPDX-License-Identifier: Apache-2.0
# Configuration delivery rules (core/config_delivery.c) with in-memory
# stores.
fleet_add_unit_test(test_config_delivery_rules
	SOURCES test_config_delivery.c fake_store_config_delivery.c
		fake_store_reports.c
	LIBS fleetd_core)
target_include_directories(test_config_delivery_rules PRIVATE
	${CMAKE_CURRENT_SOURCE_DIR})
