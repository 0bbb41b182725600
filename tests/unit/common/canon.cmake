# SPDX-License-Identifier: Apache-2.0
# Canonical JSON (common/canon.c): RFC 8785's examples and where we differ.
fleet_add_unit_test(test_canon SOURCES test_canon.c LIBS fleetcommon)
