# SPDX-License-Identifier: Apache-2.0
# Deployment rules (core/update.c): report effects, superseding, skipped
# devices and counts, table by table.
fleet_add_unit_test(test_update_rules
	SOURCES test_update_rules.c
	LIBS fleetd_core)
