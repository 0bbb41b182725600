# SPDX-License-Identifier: Apache-2.0
# Configuration rules (core/config.c, core/config_compute.c): pure
# functions on JSON values and plain target rows, table-driven. (Not
# "test_config": tests/integration/test_config.sh has that name.)
fleet_add_unit_test(test_config_rules
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_config_rules.c
	LIBS fleetd_core fleetcommon PkgConfig::JANSSON)
