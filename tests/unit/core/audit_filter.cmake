# SPDX-License-Identifier: Apache-2.0
# core/audit_filter.c: the audit list's filters and time format.
fleet_add_unit_test(test_audit_filter
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_audit_filter.c
	LIBS fleetd_core)
