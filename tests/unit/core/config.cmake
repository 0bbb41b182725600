# SPDX-License-Identifier: Apache-2.0
# Configuration rules (core/config.c, core/config_compute.c): pure
# functions on JSON values and plain target rows, table-driven.
fleet_add_unit_test(test_config
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_config.c
	LIBS fleetd_core fleetcommon PkgConfig::JANSSON)
