# SPDX-License-Identifier: Apache-2.0
# The EST re-enroll / grace-window rule (core/est.c).
fleet_add_unit_test(test_est_rule
	SOURCES test_est_rule.c
	LIBS fleetd_core)
